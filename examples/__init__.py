"""Example workflows: one per pattern of the seed documents (see workflows.py)."""
