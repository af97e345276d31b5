from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """What people decide: approval steps and the operator's inbox."""

    name = "approvals"
    verbose_name = "Approvals"
