"""Logging settings: the level, plain or JSON lines, and the loggers kept quiet."""

from __future__ import annotations

from pythonjsonlogger.core import RESERVED_ATTRS as JSON_LOG_RESERVED_ATTRS

from automation.lib.env import env_choice

__all__ = ["LOGGING", "LOG_FORMAT", "LOG_LEVEL"]

LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
# LOG_FORMAT=json writes one JSON object per line (time, level, logger, message, and the
# event_id / run_id / step_id / correlation_id of the work being done); plain text otherwise,
# with those ids as key=value after the message (automation.lib.logcontext).
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "automation.lib.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "timestamp": "time",  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
            "reserved_attrs": [*JSON_LOG_RESERVED_ATTRS, "context"],
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["ids"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per task received and finished drowns everything else at INFO.
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # beat logs every job it sends (the sweep runs every second).
        "celery.beat": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a line per failed sign-in; lockouts warn
    },
}
