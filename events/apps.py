from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils.module_loading import autodiscover_modules

from automation.engine import ports


class EventsConfig(AppConfig):
    """What happened: the append-only event log and the ways events arrive."""

    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from events import bridge, endpoints, schemas, sink
        from events.models import EventSchema, SignalBridge, WebhookEndpoint

        ports.event_sink_set(sink.EventLog())  # what ctx.emit and wait lookbacks use
        # @projection and @upcaster live in projections.py / upcasters.py of installed apps.
        autodiscover_modules("projections", "upcasters")

        # The signal bridge listens to every model; rules decide which changes become events.
        pre_save.connect(bridge.on_pre_save, dispatch_uid="events.bridge.pre_save")
        post_save.connect(bridge.on_post_save, dispatch_uid="events.bridge.post_save")
        post_delete.connect(bridge.on_post_delete, dispatch_uid="events.bridge.post_delete")
        # Edits in this process apply at once; other processes re-read within the cache time.
        for signal in (post_save, post_delete):
            signal.connect(schemas.cache_clear, sender=EventSchema, dispatch_uid=f"{signal}.schema")
            signal.connect(bridge.cache_clear, sender=SignalBridge, dispatch_uid=f"{signal}.bridge")
            signal.connect(
                endpoints.cache_clear, sender=WebhookEndpoint, dispatch_uid=f"{signal}.endpoint"
            )
