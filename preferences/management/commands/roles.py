"""`manage.py roles sync`: create the role groups and set their permissions (preferences/roles.py).
`manage.py roles show`: print each role's permissions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from preferences.roles import ROLES, roles_sync


class Command(BaseCommand):
    help = "Create the staff role groups and set their permissions (sync), or list them (show)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["sync", "show"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "show":
            for name, perms in ROLES.items():
                self.stdout.write(f"{name}:")
                for perm in perms:
                    self.stdout.write(f"  {perm}")
            return
        missing = roles_sync()
        for name in ROLES:
            self.stdout.write(f"{name}: {len(ROLES[name]) - len(missing[name])} permissions")
        absent = sorted({perm for perms in missing.values() for perm in perms})
        if absent:
            raise CommandError(f"Permissions that do not exist (run migrate first?): {', '.join(absent)}")
