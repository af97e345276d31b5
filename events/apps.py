from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened: the append-only event log and the ways events arrive."""

    name = "events"
    verbose_name = "Events"
