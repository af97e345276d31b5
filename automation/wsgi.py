"""WSGI entry point, for serving the HTTP API and webhooks from a WSGI server if preferred."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
django_application = get_wsgi_application()

from automation.lib.bodylimit import WSGIBodyLimit  # noqa: E402

# A Content-Length over the URL's limit is refused before Django runs (see bodylimit).
application = WSGIBodyLimit(django_application)
