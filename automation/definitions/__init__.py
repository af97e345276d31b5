"""Declarative workflows (format v1): the JSON Schema, validation, templates and the interpreter
that runs a definition through the same engine Context as code workflows."""
