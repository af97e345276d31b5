"""Event-driven business automation on Django."""

from automation.celery import app as celery_app

__all__ = ["celery_app"]
