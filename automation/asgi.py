"""ASGI entry point: HTTP through Django, WebSockets through Channels (session-authenticated)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from automation.health import HealthzFirst  # noqa: E402
from automation.lib.bodylimit import ASGIBodyLimit  # noqa: E402
from automation.lib.websocket_origin import SameOriginValidator  # noqa: E402
from automation.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over the URL's limit are refused before Django reads (and spools) them; a
        # health probe is answered without the hops of Django's handler (automation.health).
        "http": HealthzFirst(ASGIBodyLimit(django_asgi_app)),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
