"""User-facing strings go through gettext: error details and admin labels translate."""
import pytest
from django.utils import translation

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
