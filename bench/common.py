"""What every benchmark and fault script shares: databases, the project's processes, private
Redis and PostgreSQL servers for the fault scripts, percentiles and the printed table.

Everything here starts processes on 127.0.0.1 only, on free ports, and stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_HOST = os.environ.get("BENCH_REDIS_HOST", "redis://127.0.0.1:6379")
PG_BIN = Path(
    os.environ.get("BENCH_PG_BIN")
    or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))
)


# --- databases ------------------------------------------------------------------------------


def recreate_database(server: str, name: str) -> str:
    """Drop and create ``name`` on ``server`` (a URL without a database); returns its URL."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def drop_database(server: str, name: str) -> None:
    with (
        contextlib.suppress(psycopg.OperationalError),
        psycopg.connect(f"{server}/postgres", autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def project_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-mode process of the project (web, worker, beat)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=redis_url,
        REDIS_URL=redis_url,
        SECRET_KEY="bench-" + "k" * 60,
        HTTPS="false",
        DEBUG="false",
        EXAMPLES="false",
        LOG_LEVEL="warning",
        DATABASE_CONN_MAX_AGE="60",  # persistent connections, as production is configured
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with ``env`` (the benchmark's own client side)."""
    os.environ.update(env)
    import django

    django.setup()


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port} after {timeout:.0f}s")


def spawn(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process in its own process group, its output in ``log``."""
    return subprocess.Popen(
        list(args),
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM the process's group (a Celery worker and its children), SIGKILL after timeout."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_worker(
    env: dict[str, str],
    log: Path,
    *,
    concurrency: int = 2,
    name: str = "bench",
    pool="prefork",
    procfile: bool = False,
) -> subprocess.Popen:
    """A Celery worker; ``procfile``: with the Procfile's options (heartbeat, gossip and mingle
    on, as production runs it) instead of the leaner benchmark ones."""
    lean = [] if procfile else ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    return spawn(
        [PYTHON, "-m", "celery", "-A", "automation", "worker", f"--pool={pool}",
         f"--concurrency={concurrency}", "--loglevel=WARNING", "-I", "bench.bench_app",
         "-n", f"{name}@%h", *lean],
        env, log,
    )  # fmt: skip


def start_beat(env: dict[str, str], log: Path, workdir: Path) -> subprocess.Popen:
    return spawn(
        [PYTHON, "-m", "celery", "-A", "automation", "beat", "--loglevel=WARNING",
         "-s", str(workdir / "beat-schedule"), "--pidfile="],
        env, log,
    )  # fmt: skip


def start_gunicorn(env: dict[str, str], log: Path, *, workers: int = 2) -> tuple[Any, int]:
    port = free_port()
    process = spawn(
        [PYTHON, "-m", "gunicorn", "bench.wsgi:application", "--workers", str(workers),
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        env, log,
    )  # fmt: skip
    wait_port(port)
    return process, port


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Poll until ``condition()`` is true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- private servers for the fault scripts --------------------------------------------------


class OwnRedis:
    """A redis-server of our own on a free port (no persistence: a restart empties the queue,
    the worst case for the broker)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--maxmemory-policy", "noeviction",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class OwnPostgres:
    """A PostgreSQL cluster of our own (initdb as the postgres user) on a free port, fsync on."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "pg"
        self.dir.mkdir()
        workdir.chmod(0o755)  # mkdtemp's 0700 would keep the postgres user out
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.server = f"postgres://postgres@127.0.0.1:{self.port}"
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.data), "-A", "trust", "-U",
                          "postgres", "--no-sync")  # fmt: skip

    def _as_postgres(self, *args: Any) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-w", "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(SystemExit):  # not running
            self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


# --- numbers --------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table: first column left, the others right."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
