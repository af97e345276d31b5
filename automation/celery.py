"""The Celery application: `celery -A automation worker` and `celery -A automation beat`."""

from __future__ import annotations

import os

from celery import Celery

from automation.lib import (  # noqa: F401  (each registers its kombu transport)
    broker,  # Redis, surviving a broker restart (kombu#582)
    queue,  # the embedded queue
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")

app = Celery("automation")
# Every CELERY_* Django setting configures Celery (see automation/settings.py).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
