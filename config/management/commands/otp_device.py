"""`manage.py otp_device add <username> [--name phone]`: enrol a TOTP device for a staff user.

Prints the otpauth:// URL once (paste it into an authenticator app, or make a QR code of it); the
device is confirmed at once, so the next admin sign-in asks for its code. `otp_device remove
<username>` deletes the user's TOTP devices (a lost phone).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Enrol or remove the TOTP device of a staff user (the admin's second factor)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["add", "remove"])
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator")

    def handle(self, *args: Any, action: str, username: str, name: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username}.")
        if action == "remove":
            count, _ = TOTPDevice.objects.filter(user=user).delete()
            self.stdout.write(f"Removed {count} TOTP device(s) of {username}.")
            return
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        self.stdout.write(
            f"TOTP device '{name}' for {username}. Add this URL to an authenticator app; it is not shown again:"
        )
        self.stdout.write(device.config_url)
