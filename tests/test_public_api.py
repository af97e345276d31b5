"""The API a workflow author imports (``automation``), and what importing the package loads."""

from __future__ import annotations

import subprocess
import sys

from celery.app.utils import find_app

import automation
from automation.celery import app
from tests.processes import ROOT, project_env


def test_every_public_name_resolves():
    for name in automation.__all__:
        assert getattr(automation, name) is not None, name
    assert set(automation.__all__) <= set(dir(automation))


def test_celery_finds_the_app_the_tasks_are_registered_with():
    import events.tasks  # noqa: F401  (a @shared_task module)

    assert find_app("automation") is app
    assert "events.route_event" in app.tasks


def test_importing_the_package_loads_neither_the_engine_nor_celery():
    code = (
        "import sys, automation, automation.settings; "
        "print(sorted(m for m in ('celery', 'automation.engine.registry') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=project_env(DJANGO_SETTINGS_MODULE="automation.settings"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
