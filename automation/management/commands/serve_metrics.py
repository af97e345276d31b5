"""`manage.py serve_metrics`: the counters of a worker-only host, for Prometheus to scrape."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from automation.metrics import multiprocess_dir


class Command(BaseCommand):
    help = (
        "Serve the metrics that this host's Celery worker processes wrote to "
        "PROMETHEUS_MULTIPROC_DIR, as Prometheus text on http://HOST:PORT/. For hosts that run "
        "workers but no web process (a web process serves /metrics itself). It listens on "
        "every interface by default so a Prometheus elsewhere can scrape it. Ctrl-C stops. "
        "Example: PROMETHEUS_MULTIPROC_DIR=/run/metrics manage.py serve_metrics --port 9100"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="0.0.0.0", help="Interface (default: %(default)s).")  # noqa: S104
        parser.add_argument("--port", type=int, default=9100, help="Port (default: %(default)s).")

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        if not multiprocess_dir():
            raise CommandError(
                "PROMETHEUS_MULTIPROC_DIR is not set: set it to the directory this host's worker "
                "processes write to (see docs/operating.md, Metrics)."
            )
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        server, _thread = start_http_server(port, addr=host, registry=registry)
        self.stdout.write(f"Serving {multiprocess_dir()} on http://{host}:{port}/. Ctrl-C stops.")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
        server.shutdown()
        self.stdout.write("Stopped.")
