from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from automation import views
from automation.api import views as api_views

handler400 = "automation.api.errors.json_400"
handler403 = "automation.api.errors.json_403"
handler404 = "automation.api.errors.json_404"
handler500 = "automation.api.errors.json_500"

urlpatterns = [
    path("", RedirectView.as_view(url="/app/", permanent=False, http_method_names=["get", "head"])),
    path("app/", include("automation.app_urls")),
    re_path(r"^healthz/?$", views.healthz, name="healthz"),
    re_path(r"^metrics/?$", views.metrics, name="metrics"),
    path("api/auth/token/", api_views.obtain_token, name="api-token"),
    path("api/auth/me/", api_views.me, name="api-me"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("approvals.api.urls")),
    path("api/", include("automation.api.urls")),
    path("admin/", admin.site.urls),
    path("app/a/", include("approvals.urls")),
    path("api/", include("events.api.urls")),
    path("api/", include("rules.urls")),
    path("", include("events.urls")),
]
