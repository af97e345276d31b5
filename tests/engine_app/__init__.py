"""A Django app of workflows used by the engine tests (installed by tests/settings.py), so
real worker processes started with the test settings can run them too."""
