"""Settings for the test suite: the real settings, with a private data directory per run.

DATA_DIR is put in the environment (not only in settings) so the worker and server processes the
production-path tests start share this run's SQLite file and embedded queue.
"""

import os
import tempfile

if not os.environ.get("DATA_DIR"):
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="automation-test-")

from automation.settings import *  # noqa: F403
from automation.settings import DATA_DIR, DATABASES

# Connections opened by helper threads (asgiref's executor in the consumer tests) are not kept:
# a kept one would hold the test database open when pytest drops it.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not ":memory:", so other processes (Celery workers, the server) see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

# The example workflows, and the workflows the engine tests use.
INSTALLED_APPS = [
    *(app for app in INSTALLED_APPS if app != "examples"),  # noqa: F405
    "examples",
    "tests.engine_app",
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Templates may reference static files that `collectstatic` has not hashed in a test run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise warns at start-up when STATIC_ROOT is missing (a fresh clone has not collected).
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
