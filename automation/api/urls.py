from django.urls import path

from automation.api import views

urlpatterns = [
    path("runs/", views.run_list, name="api-runs"),
    path("runs/<uuid:run_id>/", views.run_detail, name="api-run"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel_view, name="api-run-cancel"),
    path("runs/<uuid:run_id>/retry/", views.run_retry_view, name="api-run-retry"),
]
