"""Run inside a peer's environment (tests/ssf_settings.py):

    python -m tests.ssf_peer login <user pk> <username>   # prints the login body (JSON)

creates the user (with that pk) if needed and opens a session for it."""
import json
import sys

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from jwt_sessions import api  # noqa: E402


def login(pk: str, username: str) -> None:
    model = get_user_model()
    user = model.objects.filter(pk=pk).first() or model.objects.create_user(
        pk=int(pk), username=username, password="not-used-here-1")
    print(json.dumps(api.issue_tokens(user)))


if __name__ == "__main__":
    login(*sys.argv[2:4])
