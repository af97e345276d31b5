from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from automation.lib.ids import uuid7


class Heartbeat(models.Model):
    """The last time a periodic job crossed the whole background path.

    The scheduler (celery beat, or the embedded one) sends a heartbeat task on an interval and a
    worker runs it and writes this row, so a recent row proves scheduler → broker → worker →
    database works. /healthz reports its age.
    """

    name = models.CharField(primary_key=True, max_length=64)
    seen_at = models.DateTimeField()
    worker = models.CharField(max_length=255, help_text="Host and process that ran the job.")

    class Meta:
        verbose_name = "background heartbeat"

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S} by {self.worker}"


class Workflow(models.Model):
    """A business process, written as code (``@workflow``) or declared as data (admin, API)."""

    class Kind(models.TextChoices):
        CODE = "code", "Code"
        DECLARATIVE = "declarative", "Declarative"

    name = models.SlugField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="Inactive workflows start no new runs.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> WorkflowVersion | None:
        return self.versions.order_by("-number").first()


class WorkflowVersion(models.Model):
    """One immutable version of a workflow. Runs are pinned to the version they started on."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(
        default=dict, blank=True, help_text="The declarative definition (declarative workflows)."
    )
    code_ref = models.CharField(
        max_length=300, blank=True, help_text="module:function of a code workflow."
    )
    checksum = models.CharField(max_length=64)
    trigger_event = models.CharField(
        max_length=200,
        blank=True,
        help_text="Event type pattern that starts runs: exact or order.*",
    )
    trigger_filter = models.TextField(blank=True, help_text="CEL condition on `trigger`.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError("workflow versions are immutable; save a new version instead")
        super().save(*args, **kwargs)


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # runnable: an "advance" message is on its way
    RUNNING = "running", "Running"  # a worker holds the lease
    WAITING = "waiting", "Waiting"  # suspended on a timer, event, approval or child; no worker
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RunOrigin(models.TextChoices):
    """What started a run, for the runs no event, parent run or user accounts for."""

    CODE = "code", "Application code"
    API = "api", "API"
    COMMAND_LINE = "cli", "Command line (run_workflow)"


ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Run(models.Model):
    """One execution of a workflow version. The database, not the broker, holds its state."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(
        null=True, blank=True, help_text="step, attempt, type, message, traceback of the failure."
    )
    trigger_event = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    correlation_id = models.CharField(max_length=200, blank=True)
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    parent_step_id = models.CharField(max_length=200, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_via = models.CharField(
        max_length=20, choices=RunOrigin.choices, default=RunOrigin.CODE, blank=True
    )
    concurrency_key = models.CharField(max_length=200, blank=True)
    queued = models.BooleanField(
        default=False, help_text="Held back by the workflow's concurrency limit."
    )
    cancel_requested = models.BooleanField(default=False)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    recoveries = models.PositiveIntegerField(
        default=0, help_text="Times the run was taken back from a worker that stopped answering."
    )
    waiting_for = models.CharField(max_length=300, blank=True)
    wakeups = models.PositiveIntegerField(
        default=0, help_text="Bumped by every wake-up, so a worker about to suspend sees it."
    )
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When an advance message was last sent."
    )
    deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="The run fails when it is still active then."
    )
    priority = models.SmallIntegerField(
        default=0, help_text="Its trigger's priority: higher is sent to workers first."
    )
    # Search attributes (automation.engine.search): {key: text}. On PostgreSQL a GIN index
    # (jsonb_path_ops, created by migration 0011 there only) serves ?search.<key>= filters.
    search = models.JSONField(
        default=dict, blank=True, help_text="Search attributes the run set: key → text."
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One event starts each subscribed workflow once, however often it is routed.
            models.UniqueConstraint(
                fields=["workflow", "trigger_event"],
                condition=models.Q(trigger_event__isnull=False),
                name="run_once_per_workflow_and_event",
            ),
        ]
        indexes = [
            # Run lists, newest first.
            models.Index(fields=["-created_at"], name="run_created_idx"),
            # Lists filtered by workflow and status; the concurrency limit's count of active runs.
            models.Index(
                fields=["workflow", "status", "concurrency_key"], name="run_wf_status_idx"
            ),
            # Recovery sweep: running runs whose lease expired; pending runs never dispatched.
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease_idx"),
            # Filter by correlation id (partial: most runs have none, and an index full of
            # equal empty keys slows every INSERT).
            models.Index(
                fields=["correlation_id"],
                condition=~models.Q(correlation_id=""),
                name="run_correlation_idx",
            ),
            # Redispatch sweep: pending runs whose advance message was sent long ago.
            models.Index(
                fields=["dispatched_at"],
                condition=models.Q(status="pending"),
                name="run_pending_dispatched_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} run {self.id}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def search_items(self) -> list[tuple[str, str]]:
        """The search attributes by key, for pages (a template cannot call ``.items`` on a
        dict that may have a key named "items")."""
        return sorted((self.search or {}).items())


class DeadLetterRun(Run):
    """Failed runs, as the admin's dead-letter list: inspect, fix the cause, retry in bulk."""

    class Meta:
        proxy = True
        verbose_name = "dead-letter run"
        verbose_name_plural = "dead letter (failed runs)"


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"  # sleep, event, approval, child, parallel, or retry pending
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # final: retries exhausted or not retryable
    SKIPPED = "skipped", "Skipped"  # its ``if`` was false
    # Still open when its run ended (cancelled, failed, timed out, dead-lettered): it never will.
    CANCELLED = "cancelled", "Cancelled"


#: Step records whose outcome is not known yet; none is left once their run has ended.
OPEN_STEP_STATUSES = (StepStatus.RUNNING, StepStatus.WAITING)


#: The order of a run's journal as every view shows it (API, run page, admin, CLI): the order
#: in which the steps started, ties broken by creation. Not ``seq``: parallel branches,
#: compensations and the failure handler have none, and SQLite sorts NULLs first where
#: PostgreSQL sorts them last, so an order on ``seq`` would differ between the two.
TIMELINE_ORDER = ("started_at", "id")


class StepRecordQuerySet(models.QuerySet):
    def timeline(self) -> StepRecordQuerySet:
        """The records in the order they happened (TIMELINE_ORDER)."""
        return self.order_by(*TIMELINE_ORDER)


class StepRecord(models.Model):
    """The journal: one row per step of a run, holding its result once it is known.

    Replaying a workflow returns the recorded output (or re-raises the recorded error) instead of
    executing the step again; (run, step_id) is unique, so a second result is a conflict, not a
    second row.
    """

    class Kind(models.TextChoices):
        STEP = "step", "Step"
        SLEEP = "sleep", "Sleep"
        WAIT_EVENT = "wait_event", "Wait for event"
        WAIT_SIGNAL = "wait_signal", "Wait for signal"
        APPROVAL = "approval", "Approval"
        EMIT = "emit", "Emit event"
        CHILD = "child", "Child workflow"
        PARALLEL = "parallel", "Parallel"
        BRANCH = "branch", "Parallel branch"
        VALUE = "value", "Recorded value"
        COMPENSATION = "compensation", "Compensation"
        ON_FAILURE = "on_failure", "Failure handler"
        MARKER = "marker", "Patch marker"  # ctx.patched(): this run took a change's new path

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=200)
    seq = models.PositiveIntegerField(
        null=True, blank=True, help_text="Order in which the workflow reached it (None: branch)."
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STEP)
    status = models.CharField(max_length=20, choices=StepStatus.choices)
    attempt = models.PositiveIntegerField(default=1)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(
        null=True, blank=True, help_text="type, message, traceback, retryable of the last failure."
    )
    attempts = models.JSONField(
        default=list, blank=True, help_text="Earlier failed attempts: error, started, finished."
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Branch steps: when a silent worker loses its claim."
    )

    objects = StepRecordQuerySet.as_manager()

    class Meta:
        ordering = ["run", *TIMELINE_ORDER]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_id"], name="step_unique_per_run"),
        ]
        indexes = [
            # Branch recovery sweep: parallel branches whose claim or dispatch expired.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(kind="branch", status__in=["running", "waiting"]),
                name="step_branch_lease_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_id} ({self.status}, attempt {self.attempt})"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def earlier_attempts(self) -> list[dict[str, Any]]:
        """The attempts before the one shown: ``attempts`` ends with the step's own last
        attempt once it failed (its error is ``error``), which is not an earlier one."""
        history = list(self.attempts or [])
        last = history[-1] if history else {}
        shown = {key: (self.error or {}).get(key) for key in ("type", "message")}
        same = {key: last.get("error", {}).get(key) for key in shown} == shown
        if self.error and last.get("attempt") == self.attempt and same:
            history.pop()
        return history


class Timer(models.Model):
    """A durable timer: wake a run (or retry a branch) at ``due_at``. Fired by a periodic sweep."""

    class Kind(models.TextChoices):
        WAKE = "wake", "Wake run"  # sleep, retry backoff, wait deadline
        RUN_TIMEOUT = "run_timeout", "Run timeout"
        BRANCH = "branch", "Retry parallel branch"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="timers")
    step_id = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WAKE)
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [
            # The timer sweep: unfired timers by due time.
            models.Index(
                fields=["due_at"], condition=models.Q(fired_at__isnull=True), name="timer_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.step_id or ''} at {self.due_at:%Y-%m-%d %H:%M:%S}"


class FlowKey(models.Model):
    """The state of one key of a workflow trigger's flow control: the starts a rate limit or a
    throttle counts, or the run a debounce holds back. Routing workers deciding for the same key
    update this row first, so the database serialises them (a row lock on PostgreSQL, the write
    lock on SQLite) and no process keeps the state in memory."""

    class Kind(models.TextChoices):
        RATE_LIMIT = "rate_limit", "Rate limit"
        THROTTLE = "throttle", "Throttle"
        DEBOUNCE = "debounce", "Debounce"
        BATCH = "batch", "Batch"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, blank=True)
    # Rate limit: when the starts of the period happened; throttle: when the latest starts are
    # due. Oldest first, at most the limit's number of entries (ISO 8601 times).
    starts = models.JSONField(default=list, blank=True)
    # Debounce, batch: the run waiting for its window to close, and when its first event came.
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # When the row holds nothing any more (its starts are out of their period, its debounce
    # window closed): the sweep deletes it then, so keys seen once do not pile up.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "kind", "key"], name="flow_key_unique"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="flow_key_expires_idx")]

    def __str__(self) -> str:
        return f"{self.workflow.name} {self.kind} {self.key!r}"


class TriggerOutcome(models.Model):
    """What a workflow trigger's flow control did with one event: the run it started, delayed
    or folded the event into, or why it started none. Shown on the event's page and API."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        DELAYED = "delayed", "Delayed"
        DEBOUNCED = "debounced", "Debounced"
        BATCHED = "batched", "Batched"
        SKIPPED = "skipped", "Skipped"

    event = models.ForeignKey(
        "events.Event", on_delete=models.CASCADE, related_name="trigger_outcomes"
    )
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    key = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "workflow"], name="trigger_outcome_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name}: {self.outcome}"


class Wait(models.Model):
    """A run waiting for an event matched by type and data (exact or CEL), with a deadline."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MATCHED = "matched", "Matched"
        TIMED_OUT = "timed_out", "Timed out"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="waits")
    step_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=200)
    match = models.JSONField(default=dict, blank=True, help_text="Exact values by path in data.")
    expression = models.TextField(blank=True, help_text="CEL condition on `event`.")
    source = models.CharField(
        max_length=200, blank=True, help_text="Pattern the event's source must match; blank: any."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    deadline = models.DateTimeField(null=True, blank=True)
    event = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A step waiting for any or all of several events has one Wait per event, numbered.
    part = models.PositiveSmallIntegerField(
        default=0, help_text="Which of the step's events this is (a wait for any or all)."
    )
    mode = models.CharField(
        max_length=3,
        choices=[("", "One event"), ("any", "Any of several"), ("all", "All of several")],
        blank=True,
        default="",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_id", "part"], name="wait_unique_per_run_step_part"
            ),
        ]
        indexes = [
            # Routing an event: the open waits for its type.
            models.Index(
                fields=["event_type"],
                condition=models.Q(status="open"),
                name="wait_open_type_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} waits for {self.event_type} ({self.status})"


class Signal(models.Model):
    """A message sent to a run (``POST /api/runs/<id>/signals/``): kept until a step of the run
    waiting for a signal of its name consumes it, each signal once, oldest first."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="signals")
    name = models.CharField(max_length=200)
    data = models.JSONField(default=dict, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(default=timezone.now)
    step_id = models.CharField(
        max_length=200, blank=True, help_text="The waiting step that consumed it; blank: none yet."
    )
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sent_at", "id"]
        indexes = [
            # A step waiting for a signal: the run's oldest unconsumed signal of that name.
            models.Index(
                fields=["run", "name", "sent_at"],
                condition=models.Q(consumed_at__isnull=True),
                name="signal_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"signal {self.name} to {self.run_id}"

    @property
    def consumed(self) -> bool:
        return self.consumed_at is not None


class Circuit(models.Model):
    """The shared state of one circuit breaker (an action, or a host for ``http.request`` and
    ``slack.post``). Every worker reads and changes the same row, with conditional updates,
    so a circuit opened by one worker holds the others back too."""

    class State(models.TextChoices):
        CLOSED = "closed", "Closed"
        OPEN = "open", "Open"
        HALF_OPEN = "half_open", "Half-open (one probe call)"

    key = models.CharField(primary_key=True, max_length=255)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(
        default=0, help_text="Failures counted since window_start."
    )
    window_start = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Open: when a probe call may go. Half-open: when a lost probe is given up.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
