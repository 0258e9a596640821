"""User-facing strings go through gettext: error details and admin labels translate."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

import jwt_sessions
from jwt_sessions.models import RevokeReason, Session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_error_detail_follows_the_active_language_and_the_code_does_not(api):
    with translation.override("de"):
        body = assert_error(api.whoami("not.a.jwt"), 401, "token_invalid")
    assert body["detail"] == "Das Zugriffstoken ist ungültig."


def test_error_detail_is_english_by_default(api):
    body = assert_error(api.whoami("not.a.jwt"), 401, "token_invalid")
    assert body["detail"] == "The access token is invalid."


def test_model_and_reason_labels_translate():
    with translation.override("de"):
        assert str(Session._meta.verbose_name_plural) == "Sitzungen"
        assert str(RevokeReason.ADMIN.label) == "In der Verwaltung widerrufen"


def test_the_newer_pages_translate_too():
    """The dashboard, the DPoP errors and the new-device email are in the catalogue."""
    from django.utils.translation import gettext, ngettext
    with translation.override("de"):
        assert gettext("Sessions dashboard") == "Sitzungsübersicht"
        assert gettext("This DPoP proof was already used.") == (
            "Dieser DPoP-Nachweis wurde bereits verwendet.")
        assert gettext("New sign-in to your account") == "Neue Anmeldung bei Ihrem Konto"
        assert ngettext("%(time)s: %(count)d session opened",
                        "%(time)s: %(count)d sessions opened", 2) % {
            "time": "9:00", "count": 2} == "9:00: 2 Sitzungen geöffnet"


@pytest.mark.skipif(not shutil.which("xgettext") or not shutil.which("msgattrib"),
                    reason="needs GNU gettext")
def test_every_string_of_the_package_has_a_german_translation(tmp_path):
    """makemessages over a copy of the package finds nothing new, fuzzy or untranslated."""
    package = Path(jwt_sessions.__file__).parent
    copy = tmp_path / "jwt_sessions"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run([sys.executable, "-m", "django", "makemessages", "-l", "de",
                    "--no-obsolete"], cwd=copy, check=True, capture_output=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": ""})
    catalogue = str(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")
    for option in ("--untranslated", "--only-fuzzy"):
        listed = subprocess.run(["msgattrib", option, "--no-wrap", catalogue], check=True,
                                capture_output=True, text=True).stdout
        msgids = [line for line in listed.splitlines() if line.startswith("msgid ")]
        assert msgids[1:] == [], f"{option}: {msgids[1:]}"  # the first is the header
