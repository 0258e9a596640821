"""`manage.py clearjwtsessions`: keep the session table bounded and Redis in step."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import cleanup


class Command(BaseCommand):
    help = ("Delete expired and revoked sessions older than AUDIT_RETENTION, prune orphaned "
            "Redis entries and replay recent revocations Redis may have missed. Safe to run "
            "repeatedly and concurrently (e.g. from cron on several hosts).")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be done; change nothing.")
        parser.add_argument("--batch-size", type=int, default=1000,
                            help="Rows deleted per transaction, users pruned and "
                                 "revocations replayed per batch (default 1000, at most "
                                 f"{cleanup.MAX_BATCH_SIZE}).")

    def handle(self, *args: Any, dry_run: bool, batch_size: int, **options: Any) -> None:
        if not 1 <= batch_size <= cleanup.MAX_BATCH_SIZE:
            raise CommandError(
                f"--batch-size must be from 1 to {cleanup.MAX_BATCH_SIZE}.")
        result = cleanup.clear_sessions(batch_size=batch_size, dry_run=dry_run)
        lines = [("Deleted", "Would delete", f"{result.deleted} session(s)")]
        if result.redis_available:
            lines += [("Pruned", "Would prune", f"{result.pruned} orphaned Redis entry(ies)"),
                      ("Replayed", "Would replay",
                       f"{result.replayed} recent revocation(s) to Redis")]
        for done, planned, what in lines:
            self.stdout.write(f"{planned if dry_run else done} {what}.")
        if not result.redis_available:
            self.stderr.write("Redis unavailable: orphan pruning and revocation replay "
                              "skipped; run again once it is reachable.")
