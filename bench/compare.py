#!/usr/bin/env python3
"""The project beside what a user could pick instead, in one run and one table.

Runs, one after the other on the same machine: bench/engine.py (the engine's 3-step no-op
workflow by ``run_start`` and started by events, its own bare Celery chain, event-to-first-step
latency), bench/ingest.py (webhook ingest in both routing modes and the bare one-INSERT view),
then the anchors in ../shared/anchors: a plain Celery app's 3-task chain whose tasks each INSERT
one row with psycopg (``bench_celery.py pgchain``), DBOS starting a 3-step workflow
(``bench_dbos.py start``) and a plain Celery task's enqueue-to-start latency
(``bench_celery.py latency``). It prints every figure and the ratios the performance bars are
stated in.

    .venv/bin/python bench/compare.py              # about 10 minutes
    .venv/bin/python bench/compare.py --smoke      # a minute: checks it works, not figures
    .venv/bin/python bench/compare.py --no-anchors # the project's own figures only

The anchors need their own environment: ``bash ../shared/anchors/setup.sh`` (idempotent; a venv
in /tmp/anchors-venv, a role and database for PostgreSQL, wrk). It is run first unless
--no-anchors. Set ANCHORS_DIR when the anchors live somewhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ANCHORS = Path(os.environ.get("ANCHORS_DIR", ROOT.parent / "shared" / "anchors"))
# The anchors' own scripts put their venv and results at these fixed places.
ANCHORS_VENV = os.environ.get("ANCHORS_VENV", "/tmp/anchors-venv")  # noqa: S108
ANCHORS_PYTHON = Path(ANCHORS_VENV) / "bin" / "python"
ANCHOR_RESULTS = Path("/tmp/anchors-results")  # noqa: S108


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a CI check")
    parser.add_argument("--no-anchors", action="store_true", help="skip Celery and DBOS")
    parser.add_argument("--runs", type=int, default=1000, help="runs / chains / workflows")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each (median taken)")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.repeat = 60, 1

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        engine, ingest = Path(tmp) / "engine.json", Path(tmp) / "ingest.json"
        size = (
            ["--smoke"] if args.smoke else ["--runs", str(args.runs), "--repeat", str(args.repeat)]
        )
        project(["bench/engine.py", *size, "--json", str(engine)])
        project(["bench/ingest.py", *(["--smoke"] if args.smoke else []), "--json", str(ingest)])
        figures = {"engine": load(engine), "ingest": load(ingest)}
    if not args.no_anchors:
        figures["anchors"] = run_anchors(args)
    print()
    print(report(figures))


def project(command: list[str]) -> None:
    print(f"$ {' '.join(command)}", flush=True)
    subprocess.run([sys.executable, *command], cwd=ROOT, check=True)


def load(path: Path) -> dict[str, float]:
    return json.loads(path.read_text())


def run_anchors(args: argparse.Namespace) -> dict[str, float]:
    if not (ANCHORS / "setup.sh").exists():
        sys.exit(f"no anchors at {ANCHORS}: set ANCHORS_DIR, or pass --no-anchors")
    subprocess.run(["bash", str(ANCHORS / "setup.sh")], check=True)
    runs = ["--runs", str(args.repeat)]
    commands = {
        "compare_pgchain": ["bench_celery.py", "pgchain", "--pool", "prefork", "--concurrency",
                            "2", "--chains", str(args.runs), *runs],
        "compare_dbos_start": ["bench_dbos.py", "start", "--n", str(args.runs), *runs],
        "compare_latency": ["bench_celery.py", "latency", "--pool", "prefork", "--concurrency",
                            "2", "--n", str(args.runs), "--rate", "100", *runs],
    }  # fmt: skip
    figures = {}
    for name, command in commands.items():
        print(f"$ {' '.join(command)}", flush=True)
        subprocess.run([str(ANCHORS_PYTHON), *command, "--name", name], cwd=ANCHORS, check=True)
        summary = json.loads((ANCHOR_RESULTS / f"{name}.json").read_text())["summary"]
        figures.update({f"{name} {key}": value["median"] for key, value in summary.items()})
    return figures


def report(figures: dict[str, dict[str, float]]) -> str:
    engine, ingest = figures["engine"], figures["ingest"]
    anchors = figures.get("anchors", {})
    rows = [
        ("engine: 3-step workflow by run_start", engine["engine steps/s"], "steps/s"),
        ("engine: 3-step workflow started by an event", engine["events steps/s"], "steps/s"),
        ("bare: the project's Celery chain, 1 INSERT/task", engine["bare steps/s"], "steps/s"),
    ]
    if anchors:
        rows += [
            ("anchor: plain Celery chain, psycopg INSERT/task",
             anchors["compare_pgchain steps_per_s"], "steps/s"),
            ("anchor: DBOS start_workflow, 3 no-op steps",
             anchors["compare_dbos_start steps_per_s"], "steps/s"),
        ]  # fmt: skip
    rows += [
        ("engine: event received -> first step, p99", engine["engine p99 ms"], "ms"),
        ("engine: the same in the warm-up, p99", engine["engine warm-up p99 ms"], "ms"),
        ("bare: Celery enqueue -> task start, p99", engine["bare p99 ms"], "ms"),
    ]
    if anchors:
        rows.append(
            ("anchor: plain Celery enqueue -> start, p99", anchors["compare_latency p99_ms"], "ms")
        )
    rows += [
        ("ingest: webhook, publish mode (default)", ingest["ingest (publish) rps"], "req/s"),
        ("ingest: webhook, outbox mode", ingest["ingest (outbox) rps"], "req/s"),
        ("bare: one-INSERT Django view", ingest["bare rps"], "req/s"),
        ("ingest: publish mode at half load, p99", ingest["ingest (publish) at 1/2 p99_ms"], "ms"),
    ]
    width = max(len(label) for label, _, _ in rows)
    lines = [f"{'measurement':<{width}}  {'value':>9}  unit", "-" * (width + 18)]
    lines += [f"{label:<{width}}  {value:>9.1f}  {unit}" for label, value, unit in rows]
    lines += ["", "ratios (same run) and their bars:"]
    bare_view = ingest["bare rps"]
    ratios = [
        ("engine/bare chain, run_start", engine["engine steps/s"] / engine["bare steps/s"], ""),
        ("engine/bare chain, by events", engine["events steps/s"] / engine["bare steps/s"], ""),
        ("ingest publish/bare view", ingest["ingest (publish) rps"] / bare_view, ">= 0.85"),
        ("ingest outbox/bare view", ingest["ingest (outbox) rps"] / bare_view, ""),
    ]  # fmt: skip
    if anchors:
        chain, dbos = (
            anchors["compare_pgchain steps_per_s"],
            anchors["compare_dbos_start steps_per_s"],
        )
        ratios += [
            ("engine/plain Celery chain, run_start", engine["engine steps/s"] / chain, ">= 1.0"),
            ("engine/plain Celery chain, by events", engine["events steps/s"] / chain, ">= 1.0"),
            ("engine/DBOS, run_start", engine["engine steps/s"] / dbos, "> 1"),
            ("engine/DBOS, by events", engine["events steps/s"] / dbos, "> 1"),
        ]  # fmt: skip
    lines += [f"  {label:<38} {value:5.2f}  {bar}" for label, value, bar in ratios]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
