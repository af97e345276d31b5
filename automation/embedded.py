"""The embedded runtime: a Celery worker and the periodic scheduler as threads of one process.

`manage.py serve` starts these beside the ASGI server when no broker is configured. Code keeps
enqueueing work the ordinary Celery way (``task.delay_on_commit(...)``); the messages go to the
on-disk queue in DATA_DIR and this worker runs them on its own threads, never inside the request
that enqueued them. Messages still queued when the process stops are run after the next start.
"""

from __future__ import annotations

import logging
import socket
import threading

from celery.beat import EmbeddedService
from celery.worker import WorkController
from django.conf import settings

from automation.celery import app as celery_app

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 30.0  # seconds granted to tasks in flight on Ctrl-C


class EmbeddedRuntime:
    """Start and stop the in-process worker and scheduler."""

    def __init__(self, *, concurrency: int | None = None, beat: bool = True) -> None:
        self.concurrency = concurrency or settings.EMBEDDED_CONCURRENCY
        self.with_beat = beat
        self.worker: WorkController | None = None
        self.worker_thread: threading.Thread | None = None
        self.beat: threading.Thread | None = None
        self.stopping = threading.Event()

    def _new_worker(self) -> WorkController:
        return WorkController(
            app=celery_app,
            hostname=f"embedded@{socket.gethostname()}",
            pool="threads",
            concurrency=self.concurrency,
            loglevel=settings.LOG_LEVEL,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )

    def _run_worker(self) -> None:
        """Run the worker; if it stops by itself (Celery's "Unrecoverable error"), start a new
        one: the server must never go on answering while nothing runs in the background."""
        while True:
            assert self.worker is not None
            self.worker.start()
            if self.stopping.wait(1.0):
                return
            logger.error("embedded worker stopped unexpectedly; starting a new one")
            self.worker = self._new_worker()

    def start(self) -> None:
        if not settings.EMBEDDED:
            raise RuntimeError("the embedded runtime only runs when CELERY_BROKER_URL is unset")
        celery_app.set_current()
        celery_app.set_default()
        self.worker = self._new_worker()
        self.worker_thread = threading.Thread(
            target=self._run_worker, name="embedded-worker", daemon=True
        )
        self.worker_thread.start()
        if self.with_beat:
            self.beat = EmbeddedService(
                celery_app, thread=True, scheduler_cls=celery_app.conf.beat_scheduler
            )
            self.beat.start()
        logger.info(
            "embedded worker started: %d threads, queue in %s",
            self.concurrency,
            settings.CELERY_QUEUE_DIR,
        )

    def stop(self) -> None:
        """Stop taking new work and wait for tasks in flight (warm shutdown)."""
        if self.beat is not None:
            self.beat.stop()
            self.beat.join(SHUTDOWN_TIMEOUT)
        self.stopping.set()
        if self.worker is not None and self.worker_thread is not None:
            self.worker.stop(in_sighandler=False)
            self.worker_thread.join(SHUTDOWN_TIMEOUT)
            if self.worker_thread.is_alive():
                logger.warning("embedded worker did not stop within %ss", SHUTDOWN_TIMEOUT)
        logger.info("embedded worker stopped")
