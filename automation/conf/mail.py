"""Approval emails and links: the site's address, link lifetime, and outgoing mail."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from automation.lib.env import env_bool, env_int, env_str

__all__ = [
    "APPROVAL_EMAILS",
    "APPROVAL_LINK_MAX_AGE",
    "DEFAULT_FROM_EMAIL",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_HOST_USER",
    "EMAIL_PORT",
    "EMAIL_TIMEOUT",
    "EMAIL_USE_SSL",
    "EMAIL_USE_TLS",
    "SITE_URL",
]

# The address people reach this site at; links in approval emails start with it.
# The embedded server's own address by default, so links work on another PORT too.
_PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{_PORT}").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must start with http:// or https://.")
# Seconds a link in an approval email stays valid (it also works only once).
APPROVAL_LINK_MAX_AGE = env_int("APPROVAL_LINK_MAX_AGE", 7 * 86400, minimum=60)
# Email the assignees when an approval is requested, reminded and escalated.
APPROVAL_EMAILS = env_bool("APPROVAL_EMAILS", True)
# Outgoing mail: SMTP when EMAIL_HOST is set; otherwise emails are printed to the server's log
# (the embedded mode has no mail server; the links in them work).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true; pick one.")
# Seconds to wait for the mail server before giving up (the failure is logged, never raised).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Automation <automation@localhost>")
