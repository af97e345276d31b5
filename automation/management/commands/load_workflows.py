"""``manage.py load_workflows <dir>``: declarative workflows and event rules from YAML/JSON files
in git. A file with a rule ``kind`` (sequence, absence, threshold, aggregate, anomaly) and no
``steps`` is a rule (docs/rules.md).

Every file is checked first; if any is invalid nothing is loaded (each error names the file and
the path in it). A file whose definition did not change creates no version, so running it on
every deploy is safe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from automation.commands import workflow_definition_save
from automation.definitions.validation import validate
from rules import spec as rule_spec
from rules.services import rule_save

SUFFIXES = {".yaml", ".yml", ".json"}


def read_definition(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def definition_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file())


class Command(BaseCommand):
    help = (
        "Load (create or update) declarative workflows and event rules from the YAML/JSON files "
        "in a directory."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--check", action="store_true", help="Only validate the files; load nothing."
        )

    def handle(self, *args: Any, directory: Path, check: bool, **options: Any) -> None:
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        files = definition_files(directory)
        definitions, problems = self._read_all(files)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} problem(s) in {directory}; nothing was loaded")
        if check:
            self.stdout.write(f"{len(definitions)} workflow file(s) are valid")
            return
        with transaction.atomic():
            for path, definition in definitions:
                if rule_spec.is_rule(definition):
                    _, changed = rule_save(definition=definition)
                    note = "rule saved" if changed else "rule unchanged"
                    self.stdout.write(f"{definition['name']} ({path.name}): {note}")
                    continue
                _, version, created = workflow_definition_save(definition=definition)
                note = f"version {version.number} created" if created else "unchanged"
                self.stdout.write(f"{definition['name']} ({path.name}): {note}")

    def _read_all(self, files: list[Path]) -> tuple[list[tuple[Path, Any]], list[str]]:
        definitions: list[tuple[Path, Any]] = []
        problems: list[str] = []
        names: dict[Any, Path] = {}
        for path in files:
            try:
                definition = read_definition(path)
            except (ValueError, yaml.YAMLError) as exc:
                problems.append(f"{path}: not valid {path.suffix[1:].upper()}: {exc}")
                continue
            is_rule = rule_spec.is_rule(definition)
            check = rule_spec.validate if is_rule else validate
            problems.extend(f"{path}: {error}" for error in check(definition))
            name = definition.get("name") if isinstance(definition, dict) else None
            # Rules and workflows have names of their own: a rule may share a workflow's.
            name = (("rule", name) if is_rule else name) if name else None
            if name in names:
                problems.append(
                    f"{path}: name {definition['name']!r} is also used by {names[name]}"
                )
            elif name:
                names[name] = path
            definitions.append((path, definition))
        return definitions, problems
