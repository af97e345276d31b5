"""``manage.py export_workflows <dir>``: write each declarative workflow's latest definition to
``<dir>/<name>.yaml`` (or .json), ready to commit and to load back with load_workflows (which
then creates no version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from automation.models import Workflow


class Command(BaseCommand):
    help = "Export the latest definition of every declarative workflow as YAML or JSON files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args: Any, directory: Path, format: str, **options: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        workflows = Workflow.objects.filter(kind=Workflow.Kind.DECLARATIVE).order_by("name")
        for wf in workflows:
            version = wf.latest_version()
            if version is None:
                continue
            path = directory / f"{wf.name}.{format}"
            path.write_text(_dump(version.definition, format), encoding="utf-8")
            self.stdout.write(f"{wf.name} v{version.number} -> {path}")


def _dump(definition: dict[str, Any], format: str) -> str:
    if format == "json":
        return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
