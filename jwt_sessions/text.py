"""What a client's string may hold where it names something (a user, a subject, an
event): no control character and no lone surrogate. A database may read a NUL as the
string's end (SQLite) or fail on it (PostgreSQL), and a line break forges log lines."""
from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(value: str) -> bool:
    return _UNPRINTABLE.search(value) is not None
