from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from automation import (  # noqa: F401
            actions,  # registers the built-in actions
            clientip,  # registers the deploy check on proxy settings
            live,  # connects the live UI's receivers
            logins,  # connects the sign-in receiver that clears an account's failures
            metrics,  # connects the metrics' receivers
            signals,  # connects the Celery signal handlers
        )
        from automation.engine import registry

        registry.autodiscover()
        post_migrate.connect(_sync_code_workflows, sender=self)


def _sync_code_workflows(**kwargs: Any) -> None:
    from automation.engine import registry

    registry.sync_code_workflows(force=True)
