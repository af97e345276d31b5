"""WSGI entry point, for serving the HTTP API and webhooks from a WSGI server if preferred."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
application = get_wsgi_application()
