"""The reference in docs/ keeps up with the code: every setting the code reads from the
environment and every management command the project ships is documented."""

from __future__ import annotations

import re

from tests.docs.snippets import ROOT

APPS = ("automation", "events", "approvals")
# env_str("NAME", ...), env_int("NAME", ...): the readers of automation.lib.env.
SETTING = re.compile(r"\benv_[a-z]+\(\s*\"([A-Z][A-Z0-9_]*)\"")


def reference() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))


def test_every_environment_setting_is_documented() -> None:
    read = {
        name
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        for name in SETTING.findall(path.read_text())
    }
    assert len(read) > 30, "the settings readers were not found: update SETTING"
    text = reference()
    missing = sorted(name for name in read if not re.search(rf"\b{name}\b", text))
    assert not missing, f"settings read by the code but not documented in docs/: {missing}"


def test_every_management_command_is_documented() -> None:
    commands = {
        path.stem
        for app in APPS
        for path in (ROOT / app / "management" / "commands").glob("*.py")
        if path.stem != "__init__"
    }
    assert commands
    text = reference()
    missing = sorted(
        name for name in commands if f"manage.py {name}" not in text and f"`{name}`" not in text
    )
    assert not missing, f"management commands not documented in docs/: {missing}"
