"""Blocks of the settings that read as a whole (logging, mail, sign-in protection), kept out of
automation/settings.py so that file stays readable. Each module reads the environment itself;
automation.settings imports their names, and DJANGO_SETTINGS_MODULE stays automation.settings.
"""
