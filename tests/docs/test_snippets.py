"""Every shell and Python snippet of README.md and docs/ runs, against a live server.

One embedded server (`manage.py serve`, its own SQLite and data directory) serves the whole
module. Snippets run in reading order in a scratch directory that looks like a checkout (the
project's files linked in), so what they write stays out of the repository. Shell variables a
snippet sets (TOKEN, SECRET, ...) carry over to the snippets after it, exported only if it
exported them, as in a reader's terminal. A snippet marked ``<!-- no-test: why -->`` is
skipped with its reason.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.snippets import ROOT, Snippet, all_blocks, snippets
from tests.processes import Server, start_server, stop

RUNNABLE = [s for s in snippets() if s.skip_reason is None]
SKIPPED = [s for s in snippets() if s.skip_reason is not None]
PLACES = ("http://127.0.0.1:${PORT:-8000}", "http://127.0.0.1:8000", "http://localhost:8000")
# Variables a snippet assigns (`TOKEN=...`, `export SECRET=...`), kept for the next snippets.
ASSIGNED = re.compile(r"(?:^|[;&|(]\s*|\s)(?:export\s+)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
SNIPPET_TIMEOUT = 90
# An HTTP error answer fails the snippet, though the docs' curl commands show only `-s`.
PRELUDE = 'curl() { command curl --fail-with-body "$@"; }\n'


class DocsSite:
    """The live server and the scratch checkout the snippets run in."""

    def __init__(self, server: Server, workdir: Path, env: dict[str, str]) -> None:
        self.server = server
        self.workdir = workdir
        self.env = env
        self.state = workdir / ".snippet-state.sh"
        self.state.write_text("")

    def adapt(self, code: str) -> str:
        for place in PLACES:
            code = code.replace(place, self.server.url)
        return code

    def run(self, snippet: Snippet) -> subprocess.CompletedProcess[str]:
        code = self.adapt(snippet.code)
        if snippet.saved_as:
            target = self.workdir / snippet.saved_as
            target.parent.mkdir(parents=True, exist_ok=True)
            # A folder linked into the repository (automation/, examples/): never write there.
            assert not target.parent.resolve().is_relative_to(ROOT.resolve()), snippet.saved_as
            target.unlink(missing_ok=True)  # a link into the repository: never write through it
            target.write_text(code)
            if target.parts[len(self.workdir.parts)] == "tests":
                return subprocess.CompletedProcess([], 0, "", "")  # pytest runs it later
        # A module of the reader's (my_app/workflows.py) is run too: it must import.
        if snippet.kind == "python":
            script = self.workdir / ".snippet.py"
            script.write_text(code)
            body = f'"{sys.executable}" {script}'
        else:
            body = code
        # `declare -p` keeps whether the variable was exported, as a reader's terminal would.
        saving = "".join(
            f"declare -p {name} >> {self.state} 2>/dev/null || true\n"
            for name in sorted(set(ASSIGNED.findall(code)))
        )
        script = f"{PRELUDE}. {self.state}\nset -euo pipefail\n{body}\n{saving}"
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,  # a snippet that asks a question fails instead of hanging
            capture_output=True,
            text=True,
            timeout=SNIPPET_TIMEOUT,
            check=False,
        )


def scratch_checkout(path: Path) -> Path:
    """A directory whose entries link to the project's, except `data/` and `tests/` (a real
    directory of links, so a reader's new test file lands in the scratch copy)."""
    path.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in {".git", "data", "tests", "site"}:
            continue
        (path / entry.name).symlink_to(entry)
    (path / "tests").mkdir()
    for entry in (ROOT / "tests").iterdir():
        (path / "tests" / entry.name).symlink_to(entry)
    return path


def manage(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsSite]:
    base = tmp_path_factory.mktemp("docs")
    workdir = scratch_checkout(base / "checkout")
    data = base / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "REDIS_", "DJANGO_", "DATABASE_", "PYTEST_"))
    }
    env.update(
        DATA_DIR=str(data),
        DATABASE_URL=f"sqlite:///{data / 'db.sqlite3'}",
        HTTPS="false",
        PYTHONUNBUFFERED="1",
        DJANGO_SUPERUSER_USERNAME="admin",
        DJANGO_SUPERUSER_PASSWORD=secrets.token_urlsafe(12),
    )
    data.mkdir()
    manage(env, workdir, "migrate", "--noinput", "-v0")
    manage(env, workdir, "ensure_admin")
    token = manage(env, workdir, "drf_create_token", "admin").split()[2]
    server = start_server(env, base / "server.log")
    try:
        # The docs call this the token of "the admin of make run".
        yield DocsSite(server, workdir, {**env, "TOKEN": token})
    finally:
        stop(server.process)


@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda s: s.name)
def test_snippet_runs(site: DocsSite, snippet: Snippet) -> None:
    result = site.run(snippet)
    assert result.returncode == 0, (
        f"{snippet.name} failed ({result.returncode}):\n{snippet.code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def test_yaml_definitions_load(site: DocsSite, tmp_path: Path) -> None:
    """Every complete workflow definition shown in YAML is one the server accepts."""
    definitions = [
        block
        for block in all_blocks()
        if block.lang in {"yaml", "yml"} and re.search(r"^name: .*^steps:", block.code, re.S | re.M)
    ]
    assert definitions, "the docs show no YAML definition"
    for number, block in enumerate(definitions):
        (tmp_path / f"{number}.yaml").write_text(block.code)
    # The assignees the examples name (manage.py demo makes the group; these may run alone).
    group = "\n".join(
        [
            "from django.contrib.auth.models import Group",
            "Group.objects.get_or_create(name='managers')",
        ]
    )
    manage(site.env, site.workdir, "shell", "-c", group)
    output = manage(site.env, site.workdir, "load_workflows", "--check", str(tmp_path))
    assert f"{len(definitions)} workflow file(s) are valid" in output


def test_skipped_snippets_say_why() -> None:
    assert all(s.skip_reason for s in SKIPPED), [s.name for s in SKIPPED if not s.skip_reason]
    print(f"{len(RUNNABLE)} snippets run, {len(SKIPPED)} skipped")


def test_every_no_test_marker_is_before_a_block() -> None:
    marked = {(s.path, s.line) for s in all_blocks() if s.skip_reason is not None}
    markers = {
        (block.path, index + 2)
        for block in {b.path: b for b in all_blocks()}.values()
        for index, line in enumerate(block.path.read_text().split("\n"))
        if line.strip().startswith("<!-- no-test")
    }
    assert markers <= marked, f"no-test markers not right before a fenced block: {markers - marked}"


def test_site_builds_strictly(tmp_path: Path) -> None:
    """`make docs`: a broken link, a missing nav page or a bad option fails the build."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "settings.html").exists() or (tmp_path / "settings" / "index.html").exists()
