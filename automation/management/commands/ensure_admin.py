"""`manage.py ensure_admin`: make sure someone can log in to /admin/ on a new installation."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create a superuser if none exists. With DJANGO_SUPERUSER_USERNAME and "
        "DJANGO_SUPERUSER_PASSWORD set, that account is created (and left alone if it exists). "
        "Otherwise a demo superuser 'admin' is created with a generated password, printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if bool(username) != bool(password):
            raise CommandError(
                "Set both DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD, or neither."
            )
        users = get_user_model().objects
        if username:
            email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
            if users.filter(username=username).exists():
                self.stdout.write(f"Admin user {username!r} exists.")
                return
            users.create_superuser(username=username, email=email, password=password)
            self.stdout.write(f"Created admin user {username!r}.")
            return
        if users.filter(is_superuser=True).exists():
            self.stdout.write(
                "An admin user exists (the demo password was printed when it was created; "
                "reset it with `manage.py changepassword admin`)."
            )
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=DEMO_USERNAME, email="", password=password)
        self.stdout.write(
            self.style.WARNING(
                f"Created demo admin user {DEMO_USERNAME!r} with password {password!r}. "
                "It is shown this once."
            )
        )
