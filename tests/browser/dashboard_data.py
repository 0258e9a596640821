"""A week of sign-ins for the dashboard's screenshot: run inside the example project
(`manage.py shell -c "from tests.browser.dashboard_data import seed; seed()"`).

Deterministic (a seeded random generator), shaped like a real site: busy days, quiet
nights, mostly computers and phones, mostly logouts, a few reuse detections.
"""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from jwt_sessions.models import RevokeReason, Session

DEVICE_TYPES = ["pc"] * 6 + ["mobile"] * 5 + ["tablet"] * 2 + ["bot", "other"]
REASONS = ([RevokeReason.LOGOUT] * 30 + [RevokeReason.LOGOUT_ALL] * 6 + [RevokeReason.USER] * 4
           + [RevokeReason.PASSWORD_CHANGED] * 3 + [RevokeReason.ADMIN] * 2
           + [RevokeReason.MAX_SESSIONS] * 2 + [RevokeReason.REUSE_DETECTED])


def seed(seed_value: int = 25) -> int:
    rng = random.Random(seed_value)
    users = list(get_user_model().objects.all())
    now = timezone.now()
    rows = []
    for hours_ago in range(7 * 24):
        hour = now - timedelta(hours=hours_ago)
        busy = 8 <= hour.hour <= 20
        for _ in range(rng.randint(3, 12) if busy else rng.randint(0, 3)):
            created = hour - timedelta(minutes=rng.randint(0, 59))
            revoked = rng.random() < 0.35
            rows.append(Session(
                id=uuid.uuid4(), user=rng.choice(users), refresh_token_bcrypt="-",
                refresh_token_sha256=uuid.uuid4().hex * 2, access_jti=uuid.uuid4().hex,
                device_type=rng.choice(DEVICE_TYPES), created_at=created,
                last_activity_at=created, expires_at=now + timedelta(days=20),
                revoked_at=created + timedelta(minutes=30) if revoked else None,
                revoked_reason=rng.choice(REASONS) if revoked else ""))
    Session.objects.bulk_create(rows, batch_size=500)
    return len(rows)
