from django.apps import AppConfig


class EngineAppConfig(AppConfig):
    name = "tests.engine_app"
    label = "engine_app"
