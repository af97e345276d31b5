"""The project's settings plus the bare baseline view's URL (benchmarks only)."""

from automation.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
