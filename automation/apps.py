from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        import automation.celery  # noqa: F401  (the Celery app, which @shared_task tasks bind to)
        from automation import (  # noqa: F401
            actions,  # registers the built-in actions
            live,  # connects the live UI's receivers
            live_access,
            logins,  # connects the sign-in receiver that clears an account's failures
            metrics,  # connects the metrics' receivers
            signals,  # connects the Celery signal handlers
            tasks,
        )
        from automation.definitions import interpreter
        from automation.engine import dispatch, ports, registry
        from automation.lib import clientip  # noqa: F401  (registers the deploy check on proxies)

        # The engine's ports this app fills (see automation.engine.ports).
        dispatch.set_backend(tasks.CeleryBackend())
        ports.spec_builder_set(interpreter.workflow_spec)
        live_access.connect()
        registry.autodiscover()
        post_migrate.connect(_sync_code_workflows, sender=self)
        _connect_metric_labels()


def _connect_metric_labels() -> None:
    from automation import selectors
    from automation.metric_labels import MAX_EVENT_TYPES, labels
    from automation.models import Workflow, WorkflowVersion

    labels.install(lambda: selectors.listened_event_types(MAX_EVENT_TYPES))
    # Saving a workflow (or a version of one) in this process clears the cache at once.
    for model in (Workflow, WorkflowVersion):
        post_save.connect(
            labels.cache_clear, sender=model, dispatch_uid=f"metric_labels.{model._meta.label}"
        )


def _sync_code_workflows(**kwargs: Any) -> None:
    from automation.engine import registry

    registry.sync_code_workflows(force=True)
