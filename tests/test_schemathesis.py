"""schemathesis against the live OpenAPI schema of a real server: generated requests to every
operation (valid and invalid), authenticated with a token, find no 5xx and no answer that the
schema does not document. Bounded: a few examples per operation, one minute at most."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from tests.events.servers import running_gunicorn
from tests.processes import project_env

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]


@pytest.mark.django_db(transaction=True)
def test_generated_requests_find_no_server_error_and_no_undocumented_answer(
    tmp_path, users, workflow_harness
):
    token = Token.objects.create(user=users["admin"]).key
    # Something to find: a failed run (retry, cancel), a waiting one with an approval (decide).
    users["admin"].groups.add(Group.objects.create(name="managers"))
    workflow_harness.emit("example.trip.requested", {"destination": "Oslo", "fail": "car"})
    workflow_harness.emit("example.expense.submitted", {"amount": 90, "employee": "e@x.com"})
    with running_gunicorn(project_env(), tmp_path / "server.log", workers=2, threads=4) as server:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.url}/api/schema/?format=json",
                "--checks",
                ",".join(CHECKS),
                "--header",
                f"Authorization: Token {token}",
                "--max-examples",
                "5",
                "--workers",
                "1",  # hypothesis is not thread-safe on Python 3.11 (AST recursion errors)
                "--request-timeout",
                "10",
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis keeps a cache in the working directory
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    failures = result.stdout.find("FAILURES")
    summary = result.stdout[failures:][:4000] if failures >= 0 else result.stdout[-3000:]
    assert result.returncode == 0, f"{summary}\n--- server log ---\n{server.output()[-4000:]}"
    assert "passed" in summary
