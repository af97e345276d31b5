from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic job crossed the whole background path.

    The scheduler (celery beat, or the embedded one) sends a heartbeat task on an interval and a
    worker runs it and writes this row, so a recent row proves scheduler → broker → worker →
    database works. /healthz reports its age.
    """

    name = models.CharField(primary_key=True, max_length=64)
    seen_at = models.DateTimeField()
    worker = models.CharField(max_length=255, help_text="Host and process that ran the job.")

    class Meta:
        verbose_name = "background heartbeat"

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S} by {self.worker}"
