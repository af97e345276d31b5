from django.urls import path

from automation.api import circuits, messages, views, workflows

urlpatterns = [
    path("runs/", views.run_list, name="api-runs"),
    path("runs/<uuid:run_id>/", views.run_detail, name="api-run"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel_view, name="api-run-cancel"),
    path("runs/<uuid:run_id>/retry/", views.run_retry_view, name="api-run-retry"),
    path("runs/<uuid:run_id>/signals/", messages.run_signals, name="api-run-signals"),
    path("runs/<uuid:run_id>/queries/", messages.run_query_list, name="api-run-queries"),
    path("runs/<uuid:run_id>/queries/<str:name>/", messages.run_query_view, name="api-run-query"),
    path("workflows/", workflows.workflow_list, name="api-workflows"),
    path("workflows/schema/", workflows.workflow_schema, name="api-workflow-schema"),
    path("workflows/<str:name>/", workflows.workflow_detail, name="api-workflow"),
    path("workflows/<str:name>/runs/", workflows.workflow_run_start, name="api-workflow-runs"),
    path("actions/", workflows.action_list, name="api-actions"),
    path("circuits/", circuits.circuit_list, name="api-circuits"),
    path("circuits/<str:key>/close/", circuits.circuit_close_view, name="api-circuit-close"),
]
