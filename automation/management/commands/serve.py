"""`manage.py serve`: the one-process server of the embedded topology."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from automation.embedded import EmbeddedRuntime


class Command(BaseCommand):
    help = (
        "Serve HTTP and WebSockets on PORT. With no CELERY_BROKER_URL (embedded mode) the same "
        "process also runs background work and periodic jobs on its own threads, so nothing else "
        "needs to run. In production mode it only serves; run Celery workers and beat beside it. "
        "Ctrl-C stops everything, letting tasks in flight finish."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="Interface to bind (default: %(default)s)."
        )
        parser.add_argument(
            "--port", type=int, default=None, help="Port to bind (default: the PORT setting)."
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Embedded mode only: serve without running background work in this process.",
        )

    def handle(
        self, *args: Any, host: str, port: int | None, no_worker: bool, **options: Any
    ) -> None:
        port = port or settings.PORT
        runtime = EmbeddedRuntime() if settings.EMBEDDED and not no_worker else None
        if runtime is not None:
            runtime.start()
        mode = "embedded" if settings.EMBEDDED else "production (workers run separately)"
        self.stdout.write(f"Serving on http://{host}:{port}/ in {mode} mode. Ctrl-C to stop.")
        config = uvicorn.Config(
            "automation.asgi:application",
            host=host,
            port=port,
            lifespan="off",
            log_level=settings.LOG_LEVEL.lower(),
            access_log=settings.DEBUG,
            # The client's address is the peer's; X-Forwarded-For is read by the application
            # only when TRUSTED_PROXY_COUNT says proxies write it (automation.lib.clientip).
            proxy_headers=False,
        )
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal for us.
        # Turn it into an exception so the worker threads are stopped before the process ends
        # (a second Ctrl-C while they finish their tasks interrupts the wait).
        signal.signal(signal.SIGINT, _raise_stop)
        signal.signal(signal.SIGTERM, _raise_stop)
        try:
            uvicorn.Server(config).run()
        except _Stop:
            pass
        finally:
            if runtime is not None:
                runtime.stop()
        self.stdout.write("Stopped.")


class _Stop(Exception):
    """A stop signal arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)
