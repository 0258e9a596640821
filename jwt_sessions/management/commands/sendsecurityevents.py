"""`python manage.py sendsecurityevents [--forever] [--interval S]`: push every Security
Event Token that is due, whichever process wrote it (one that died before its push
succeeded), then prune delivered events and received SET ids older than RETENTION.
Run it every minute (cron, Celery beat) or once with `--forever` under a process manager.
"""
from __future__ import annotations

import math
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...shared_signals import outbox, pusher


class Command(BaseCommand):
    help = "Push the Shared Signals events that are due and prune old ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--forever", action="store_true",
                            help="Keep running, draining every --interval seconds.")
        parser.add_argument("--interval", type=float, default=5.0,
                            help="Seconds between drains with --forever (default 5).")

    def handle(self, *args: Any, forever: bool, interval: float, **options: Any) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise CommandError("--interval must be a positive number of seconds.")
        while True:
            attempted = pusher.deliver_due()
            pruned, forgotten = outbox.prune()
            self.stdout.write(f"{attempted} event(s) attempted, {outbox.pending().count()} "
                              f"pending; pruned {pruned} event(s), {forgotten} received id(s)")
            if not forever:
                return
            time.sleep(interval)
