from django.apps import AppConfig


class ExamplesConfig(AppConfig):
    """Example workflows for each common pattern. Enabled with EXAMPLES=true (the default in
    embedded mode); they only react to event types starting with ``example.``."""

    name = "examples"
    verbose_name = "Examples"
