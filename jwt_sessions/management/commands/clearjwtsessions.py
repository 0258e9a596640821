"""`manage.py clearjwtsessions`: keep the session table bounded and Redis in step."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ... import cleanup


class Command(BaseCommand):
    help = ("Delete expired and revoked sessions older than AUDIT_RETENTION, prune their "
            "Redis entries and replay recent revocations Redis may have missed.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be done; change nothing.")
        parser.add_argument("--batch-size", type=int, default=1000,
                            help="Rows deleted per transaction (default 1000).")

    def handle(self, *args: Any, dry_run: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            from django.core.management.base import CommandError

            raise CommandError("--batch-size must be at least 1.")
        result = cleanup.clear_sessions(batch_size=batch_size, dry_run=dry_run)
        prefix = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{prefix} {result.deleted} session(s); "
                          f"replayed {result.replayed} revocation(s) to Redis.")
