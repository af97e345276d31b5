"""The operator UI at /app/ (see docs/operator-ui.md)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from approvals import delegation_views
from approvals import views as approvals
from automation import control_views as control
from automation import views as automation
from events import views as events
from rules import views as rules

app_name = "app"
LOGIN = {"template_name": "app/login.html", "redirect_authenticated_user": True}
CANCEL, RETRY = {"operation": "cancel"}, {"operation": "retry"}

urlpatterns = [
    path("", automation.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="app/login.html",
            redirect_authenticated_user=True,
            # FormView also takes PUT as a POST: a way in no form uses.
            http_method_names=["get", "head", "post", "options"],
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("approvals/", approvals.inbox, name="inbox"),
    path("approvals/delegation/", delegation_views.delegation_page, name="delegation"),
    path(
        "approvals/delegation/<int:delegation_id>/end/",
        delegation_views.delegation_end,
        name="delegation-end",
    ),
    path("approvals/<uuid:approval_id>/", approvals.approval_page, name="approval"),
    path("approvals/<uuid:approval_id>/decide/", approvals.approval_decide, name="decide"),
    path("runs/", automation.runs, name="runs"),
    path("runs/<uuid:run_id>/", automation.run_page, name="run"),
    path(
        "runs/<uuid:run_id>/cancel/",
        automation.run_operate,
        {"operation": "cancel"},
        name="run-cancel",
    ),
    path(
        "runs/<uuid:run_id>/retry/",
        automation.run_operate,
        {"operation": "retry"},
        name="run-retry",
    ),
    path("runs/<uuid:run_id>/pause/", control.run_pause_page, name="run-pause"),
    path("runs/<uuid:run_id>/resume/", control.run_resume_page, name="run-resume"),
    path("runs/<uuid:run_id>/rerun/", control.run_rerun_page, name="run-rerun"),
    path("runs/<uuid:run_id>/signals/", automation.run_signal_page, name="run-signal"),
    path("runs/<uuid:run_id>/queries/<str:name>/", automation.run_query_page, name="run-query"),
    path("workflows/", automation.workflows, name="workflows"),
    path("workflows/<slug:name>/", automation.workflow_page, name="workflow"),
    path("workflows/<slug:name>/start/", automation.workflow_start, name="workflow-start"),
    path("workflows/<slug:name>/pause/", control.workflow_pause_page, name="workflow-pause"),
    path("workflows/<slug:name>/resume/", control.workflow_resume_page, name="workflow-resume"),
    path(
        "workflows/<slug:name>/send-event/", automation.workflow_send_event, name="workflow-event"
    ),
    path(
        "workflows/<slug:name>/activate/",
        automation.workflow_activate_page,
        {"active": True},
        name="workflow-activate",
    ),
    path(
        "workflows/<slug:name>/deactivate/",
        automation.workflow_activate_page,
        {"active": False},
        name="workflow-deactivate",
    ),
    path("circuits/", automation.circuits, name="circuits"),
    path("circuits/<str:key>/close/", automation.circuit_close_page, name="circuit-close"),
    path("search/", automation.search, name="search"),
    path("events/", events.events_page, name="events"),
    path("events/<uuid:event_id>/", events.event_page, name="event"),
    path("rules/", rules.rules_page, name="rules"),
]
