"""`manage.py crm_key create --name <integration> [--expires-in-days N]`: a CRM API key, printed once.

`crm_key list` shows every key's prefix, name, expiry and state; `crm_key revoke <prefix>` revokes one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rest_framework_api_key.models import APIKey

from preferences.api_keys import crm_key_create


class Command(BaseCommand):
    help = "Create, list or revoke the API keys of CRM integrations (the key is shown once, at creation)."

    def add_arguments(self, parser: Any) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a key for one integration")
        create.add_argument("--name", required=True, help="the integration, e.g. crm-eu")
        create.add_argument("--expires-in-days", type=int, default=settings.CRM_API_KEY_DAYS)
        actions.add_parser("list", help="every key: prefix, name, expiry, state")
        revoke = actions.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "create":
            try:
                api_key, key = crm_key_create(name=options["name"], expires_in_days=options["expires_in_days"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"Key for {api_key.name}, valid until {api_key.expiry_date:%Y-%m-%d %H:%M} UTC. It is shown "
                "this once and stored only as a hash; send it as 'Authorization: Api-Key <key>':"
            )
            self.stdout.write(key)
        elif action == "list":
            for api_key in APIKey.objects.order_by("name", "created"):
                state = "revoked" if api_key.revoked else "expired" if api_key.has_expired else "valid"
                expiry = f"{api_key.expiry_date:%Y-%m-%d}" if api_key.expiry_date else "never"
                self.stdout.write(f"{api_key.prefix}  {api_key.name}  until {expiry}  {state}")
        else:
            updated = APIKey.objects.filter(prefix=options["prefix"], revoked=False).update(revoked=True)
            if not updated:
                raise CommandError(f"No valid key with prefix {options['prefix']}.")
            self.stdout.write(f"Revoked {options['prefix']}.")
