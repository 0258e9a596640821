import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_whoami_refresh_logout(api, user, queries):
    data = api.login_ok(user.username)
    assert api.whoami(data["access"]).status_code == 200
    with queries() as q:
        for _ in range(20):
            assert api.whoami(data["access"]).json()["id"] == user.pk
    assert len(q.captured_queries) == 0
    new = api.refresh_ok(data["refresh"])
    assert_error(api.whoami(data["access"]), 401, "token_invalid")
    assert api.whoami(new["access"]).status_code == 200
    assert api.me(new["access"]).json()["username"] == user.username
    assert api.logout(new["access"]).status_code == 204
    assert_error(api.whoami(new["access"]), 401, "session_revoked")
