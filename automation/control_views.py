"""The operator UI's pause, resume and rerun (docs/pause-and-rerun.md): buttons on the run and
workflow pages, and the rerun confirmation page that lists what will run again. The same
services and permissions as the API (automation.control)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from automation.control import (
    NotAllowedNow,
    RerunPlan,
    UnknownStep,
    rerun_plan,
    run_pause,
    run_rerun,
    run_resume,
    workflow_pause,
    workflow_resume,
)
from automation.lib.errors import DomainError
from automation.models import Run, StepRecord, Workflow

OPERATE_RUNS = "automation.change_run"  # as cancel and retry
CHANGE_WORKFLOWS = "automation.change_workflow"  # as the API's pause and resume


def _run(run_id: Any) -> Run:
    return get_object_or_404(Run.objects.select_related("workflow", "version"), id=run_id)


@login_required
@require_POST
@permission_required(OPERATE_RUNS, raise_exception=True)
def run_pause_page(request: HttpRequest, run_id: Any) -> HttpResponse:
    try:
        run = run_pause(run=_run(run_id), user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        done = "Paused." if run.status == "paused" else "It pauses before its next step."
        messages.success(request, done)
    return redirect("app:run", run_id=run_id)


@login_required
@require_POST
@permission_required(OPERATE_RUNS, raise_exception=True)
def run_resume_page(request: HttpRequest, run_id: Any) -> HttpResponse:
    try:
        run_resume(run=_run(run_id), user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Resumed.")
    return redirect("app:run", run_id=run_id)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(OPERATE_RUNS, raise_exception=True)
def run_rerun_page(request: HttpRequest, run_id: Any) -> HttpResponse:
    """GET: choose the step, and see which steps will run again (their side effects repeat)
    and which are kept. POST ``from_step``: rerun, then the run page."""
    run = _run(run_id)
    from_step = (request.POST if request.method == "POST" else request.GET).get("from_step", "")
    try:
        plan = rerun_plan(run=run, from_step=from_step) if from_step else None
        if plan is not None and request.method == "POST":
            run_rerun(run=run, from_step=from_step, user=request.user)
            messages.success(
                request, f"Rerunning from {from_step} (execution {run.execution + 1})."
            )
            return redirect("app:run", run_id=run.id)
    except UnknownStep as exc:
        return _rerun_form(request, run, None, str(exc), status=400)
    except NotAllowedNow as exc:
        return _rerun_form(request, run, None, str(exc), status=409)
    if request.method == "POST":
        return _rerun_form(request, run, None, "Choose the step to rerun from.", status=400)
    return _rerun_form(request, run, plan, "")


def _rerun_form(
    request: HttpRequest, run: Run, plan: RerunPlan | None, problem: str, status: int = 200
) -> HttpResponse:
    choices = StepRecord.objects.filter(run=run, seq__isnull=False).order_by("seq")
    context = {
        "run": run,
        "plan": plan,
        "choices": [r for r in choices if r.kind not in ("branch", "compensation", "on_failure")],
        "problem": problem,
        "rerunnable": run.finished or run.status == "paused",
        "section": "runs",
    }
    return render(request, "app/rerun.html", context, status=status)


@login_required
@require_POST
@permission_required(CHANGE_WORKFLOWS, raise_exception=True)
def workflow_pause_page(request: HttpRequest, name: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, name=name)
    try:
        _, paused = workflow_pause(
            workflow=workflow, user=request.user, runs=request.POST.get("runs") == "on"
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        also = f" {paused} active run{'s' if paused != 1 else ''} paused too." if paused else ""
        messages.success(request, f"Paused: new runs wait until it resumes.{also}")
    return redirect("app:workflow", name=name)


@login_required
@require_POST
@permission_required(CHANGE_WORKFLOWS, raise_exception=True)
def workflow_resume_page(request: HttpRequest, name: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, name=name)
    try:
        _, resumed = workflow_resume(workflow=workflow, user=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Resumed: {resumed} held run{'s' if resumed != 1 else ''} started."
        )
    return redirect("app:workflow", name=name)
