"""Sign-in protection: failed sign-ins counted per account and address by django-axes, and the
client address behind proxies. automation.settings installs the axes app and middleware."""

from __future__ import annotations

from datetime import timedelta

from automation.lib.env import env_bool, env_int

__all__ = [
    "AUTHENTICATION_BACKENDS",
    "AXES_CLIENT_IP_CALLABLE",
    "AXES_COOLOFF_TIME",
    "AXES_DISABLE_ACCESS_LOG",
    "AXES_ENABLED",
    "AXES_FAILURE_LIMIT",
    "AXES_LOCKOUT_CALLABLE",
    "AXES_LOCKOUT_PARAMETERS",
    "AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT",
    "AXES_RESET_ON_SUCCESS",
    "AXES_VERBOSE",
    "TRUSTED_PROXY_COUNT",
]

# How many proxies in front of the server append to X-Forwarded-For. 0: the header is ignored
# and the client's address is the connection's (a client could write any address there).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)
# Failed sign-ins (/app/login/, /admin/login/, POST /api/auth/token/) counted per account and
# per address by django-axes, in the database (every process shares the counts); reaching the
# limit locks that account, and that address, out for LOGIN_LOCKOUT_SECONDS. Admins unlock
# early in the admin (Axes → Access attempts) or with `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out sign-ins
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Axes' own reset on success deletes every count matching the request, the address's too: a
# guesser who signs in as their own account from the same address would wipe the victim's
# count. automation.logins resets only the counts of the account that signed in.
AXES_RESET_ON_SUCCESS = False
# A failure during a lockout does not restart it: otherwise one guess every
# LOGIN_LOCKOUT_SECONDS would keep a named account locked forever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not what it is for; the table would grow
AXES_CLIENT_IP_CALLABLE = "automation.lib.clientip.client_address"
AXES_LOCKOUT_CALLABLE = "automation.logins.lockout_response"
AXES_VERBOSE = False
