"""Writes of the automation domain. Each function is one transaction, named <thing>_<verb>."""

from __future__ import annotations

import os
import socket

from django.utils import timezone

from automation.models import Heartbeat

BACKGROUND = "background"


def heartbeat_record(*, name: str = BACKGROUND) -> Heartbeat:
    """Record that this process has just run a background job."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name,
        defaults={"seen_at": timezone.now(), "worker": f"{socket.gethostname()}:{os.getpid()}"},
    )
    return heartbeat
