from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """What people decide: approval steps and the operator's inbox."""

    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import live  # noqa: F401  (connects the live inbox's receiver)
