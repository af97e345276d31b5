from django.apps import AppConfig


class EngineAppConfig(AppConfig):
    name = "tests.engine_app"
    label = "engine_app"

    def ready(self) -> None:
        # Registers the pause and rerun workflows in every process (workers too).
        from tests.engine_app import control_workflows  # noqa: F401
