"""``manage.py export_workflows <dir>``: write each declarative workflow's latest definition to
``<dir>/<name>.yaml`` (or .json), ready to commit and to load back with load_workflows (which
then creates no version); event rules go to ``<dir>/rules/<name>.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from automation.models import Workflow
from rules.models import Rule


class Command(BaseCommand):
    help = (
        "Export the latest definition of every declarative workflow (and every event rule, "
        "under rules/) as YAML or JSON files."
    )

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
        rules = list(Rule.objects.order_by("name"))
        if rules:
            (directory / "rules").mkdir(exist_ok=True)
        for rule in rules:
            path = directory / "rules" / f"{rule.name}.{format}"
            path.write_text(_dump(rule.definition, format), encoding="utf-8")
            self.stdout.write(f"rule {rule.name} -> {path}")


def _dump(definition: dict[str, Any], format: str) -> str:
    if format == "json":
        return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
