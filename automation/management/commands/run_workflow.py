"""`manage.py run_workflow`: start a run with input and follow it live until it ends."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.engine.errors import WorkflowError
from automation.engine.inputs import InvalidInput
from automation.engine.runs import run_start
from automation.models import Run, RunOrigin, RunStatus, StepRecord

NOBODY_AFTER = 10.0  # seconds a run may stay pending before we say no worker seems to run


class Command(BaseCommand):
    help = (
        "Start a run of a workflow with the given input and follow it in the terminal: each "
        "step as it starts, retries, waits and ends, until the run ends. Exits 0 when it "
        "succeeded, 1 when it failed or was cancelled. The run executes where runs always do "
        "(the workers, or the `serve` process in embedded mode); Ctrl-C stops following, not "
        "the run. Example: manage.py run_workflow order-fulfilment --input '{\"id\": 42}'"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", nargs="?", help="The workflow's name.")
        parser.add_argument(
            "--run",
            metavar="RUN_ID",
            help="Follow (with --no-follow: show once) an existing run instead of starting one.",
        )
        parser.add_argument(
            "--input", default="{}", help="A JSON object, or - to read it from standard input."
        )
        parser.add_argument("--correlation-id", default="", help="Ties the run to other work.")
        parser.add_argument(
            "--no-follow",
            action="store_true",
            help="Print the run's id (with --run: its steps and status) and return at once.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=0,
            help="Stop following after this many seconds (exit 2); 0 follows until the end.",
        )
        parser.add_argument(
            "--interval", type=float, default=0.25, help="Seconds between looks (default 0.25)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run = self._existing(options["run"]) if options["run"] else self._start(options)
        follower = Follower(self, run, options["interval"], options["timeout"])
        if options["no_follow"]:
            if options["run"]:
                follower.look()
            return
        try:
            run = follower.follow()
        except KeyboardInterrupt:
            self.stdout.write(f"\nStopped following; run {run.id} goes on.")
            return
        self._conclude(run)

    def _start(self, options: dict[str, Any]) -> Run:
        if not options["workflow"]:
            raise CommandError("name the workflow to start, or give --run RUN_ID to follow a run")
        raw = sys.stdin.read() if options["input"] == "-" else options["input"]
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not JSON: {exc}") from None
        try:
            run = run_start(
                workflow=options["workflow"],
                input=data,
                correlation_id=options["correlation_id"],
                started_via=RunOrigin.COMMAND_LINE,
                check_input=True,
            )
        except InvalidInput as exc:
            lines = "\n".join(f"  {path}: {message}" for path, message in exc.errors)
            raise CommandError(
                f"--input does not match the input schema of {options['workflow']!r}; "
                f"nothing was started:\n{lines}"
            ) from None
        except WorkflowError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Started run {run.id} of {run.workflow.name} v{run.version.number}.")
        return run

    def _existing(self, run_id: str) -> Run:
        try:
            return Run.objects.select_related("workflow", "version").get(id=run_id)
        except (Run.DoesNotExist, ValidationError):
            raise CommandError(f"no run {run_id!r}; give the id the run page shows") from None

    def _conclude(self, run: Run) -> None:
        if run.status == RunStatus.SUCCEEDED:
            output = json.dumps(run.output, default=str)
            self.stdout.write(self.style.SUCCESS(f"Run succeeded. Output: {output}"))
            return
        error = run.error or {}
        where = f" at step {error['step']}" if error.get("step") else ""
        raise CommandError(f"Run {run.status}{where}: {error.get('message', '')}".rstrip(": "))


class Follower:
    """Prints what changed in a run since the last look, until it finishes."""

    def __init__(self, command: BaseCommand, run: Run, interval: float, timeout: float) -> None:
        self.command, self.run, self.interval, self.timeout = command, run, interval, timeout
        self.started = time.monotonic()
        self.steps: dict[str, tuple[str, int]] = {}
        self.status = ("", "")
        self.warned = False

    def look(self) -> Run:
        """Print the steps and the run's status that changed since the last look."""
        run = Run.objects.select_related("workflow").get(id=self.run.id)
        self._show_steps()
        self._show_run(run)
        return run

    def follow(self) -> Run:
        while True:
            run = self.look()
            if run.finished:
                return run
            elapsed = time.monotonic() - self.started
            if self.timeout and elapsed > self.timeout:
                raise CommandError(
                    f"Run {run.id} is still {run.status} after {self.timeout:g}s; "
                    "it goes on (see /admin/ or GET /api/runs/<id>/).",
                    returncode=2,
                )
            if run.status == RunStatus.PENDING and elapsed > NOBODY_AFTER and not self.warned:
                self.warned = True
                self._write(
                    "still pending: is a worker running? (`manage.py serve` in embedded mode, "
                    "`celery -A automation worker` in production)"
                )
            time.sleep(self.interval)

    def _show_steps(self) -> None:
        journal = StepRecord.objects.filter(run_id=self.run.id).timeline()
        for step in journal:
            state = (step.status, step.attempt)
            if self.steps.get(step.step_id) == state:
                continue
            self.steps[step.step_id] = state
            self._write(_step_line(step))

    def _show_run(self, run: Run) -> None:
        status = (run.status, run.waiting_for)
        if status != self.status:
            self.status = status
            self._write(_run_line(run))

    def _write(self, line: str) -> None:
        elapsed = time.monotonic() - self.started
        self.command.stdout.write(f"[{elapsed:7.2f}s] {line}")


def _step_line(step: StepRecord) -> str:
    line = f"  {step.step_id:<24} {step.status:<9} attempt {step.attempt}"
    if step.duration is not None:
        line += f"  {step.duration:.3f}s"
    if step.error and step.status in ("failed", "waiting"):
        line += f"  {step.error.get('type', '')}: {step.error.get('message', '')}"
    if step.next_attempt_at is not None and step.status == "waiting":
        when = f"{step.next_attempt_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
        line += f"  ({DUE_LABELS.get(step.kind, 'retry at')} {when})"
    return line


#: What the due time of a waiting step means, by its kind (other kinds wait for a retry).
DUE_LABELS = {
    StepRecord.Kind.APPROVAL: "due at",
    StepRecord.Kind.WAIT_EVENT: "times out at",
    StepRecord.Kind.WAIT_SIGNAL: "times out at",
    StepRecord.Kind.SLEEP: "wakes at",
}


def _run_line(run: Run) -> str:
    """ "run succeeded", "run waiting in 'ok' for an approval", "run waiting: retry 2 of ...":
    the reason is not prefixed with the status when it starts with it already."""
    reason = run.waiting_for
    if not reason:
        return f"run {run.status}"
    if reason.startswith(f"{run.status} "):
        return f"run {reason}"
    return f"run {run.status}: {reason}"
