"""Whether a session is DPoP-bound shows where people look at sessions (the device list,
the admin), while the key's thumbprint stays out of the list pages."""
from __future__ import annotations

import pytest
from django.urls import reverse

from jwt_sessions.models import Session
from tests.conftest import url
from tests.dpop_keys import ProofKey

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "http://testserver"


def bound_login(api, user, key: ProofKey) -> dict:
    return api.login_ok(user.username, HTTP_DPOP=key.proof("POST", f"{SERVER}{url('login')}"))


def test_the_device_list_says_which_sessions_are_bound(api, user):
    key = ProofKey()
    bound = bound_login(api, user, key)
    bearer = api.login_ok(user.username)
    path = url("session-list")
    resp = api.client.get(path, HTTP_AUTHORIZATION=f"DPoP {bound['access']}",
                          HTTP_DPOP=key.proof("GET", f"{SERVER}{path}", token=bound["access"]))
    assert resp.status_code == 200, resp.content
    listed = {row["id"]: row["dpop_bound"] for row in resp.json()}
    assert listed == {bound["session_id"]: True, bearer["session_id"]: False}
    assert key.jkt not in resp.content.decode()


def test_the_admin_list_marks_bound_sessions_and_never_shows_the_thumbprint(admin_client, api,
                                                                            user):
    key = ProofKey()
    bound = bound_login(api, user, key)
    api.login_ok(user.username)
    html = admin_client.get(reverse("admin:jwt_sessions_session_changelist")).content.decode()
    assert html.count('class="jwt-dpop-bound"') == 1
    assert key.jkt[:8] not in html  # not even a prefix on the list

    detail = admin_client.get(reverse("admin:jwt_sessions_session_change",
                                      args=[bound["session_id"]])).content.decode()
    assert f"{key.jkt[:8]}…" in detail and key.jkt not in detail
    assert Session.objects.get(pk=bound["session_id"]).dpop_bound
