"""Hostile or broken input: always a clear 4xx JSON body, never a 500, and the user's
other sessions keep working."""
import base64
import json

import pytest

from tests.conftest import assert_error, bearer, next_ip, url

pytestmark = pytest.mark.django_db

NOT_JSON = "username=a&password=b"


@pytest.fixture
def bystander(api, user):
    """Another live session of the same user: must survive every bad request."""
    data = api.login_ok(user.username)
    yield data
    assert api.whoami(data["access"]).status_code == 200
    assert api.refresh(data["refresh"]).status_code == 200


def raw_post(api, name, body, content_type="application/json", **extra):
    extra.setdefault("REMOTE_ADDR", next_ip())
    return api.client.post(url(name), data=body, content_type=content_type, **extra)


def assert_4xx_json(resp, status=400) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.content)
    assert resp["Content-Type"].startswith("application/json")
    return resp.json()


# ------------------------------------------------------------------ bodies
@pytest.mark.parametrize("name", ["login", "refresh"])
@pytest.mark.parametrize("body", ["{not json", "\xff\xfe", NOT_JSON, '{"a": 1'])
def test_non_json_body_is_400(api, bystander, name, body):
    assert "detail" in assert_4xx_json(raw_post(api, name, body))


@pytest.mark.parametrize("name", ["login", "refresh", "logout-all"])
@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_json_is_400(api, bystander, name, body):
    resp = raw_post(api, name, body, **bearer(bystander["access"]))
    assert "detail" in assert_4xx_json(resp)


@pytest.mark.parametrize(("name", "field"), [("login", "username"), ("login", "password")])
def test_lone_surrogate_in_a_field_is_400_field_error(api, user, bystander, name, field):
    fields = {"username": user.username, "password": "x", "refresh": "x"}
    body = json.dumps(fields).replace(f'"{field}": "', f'"{field}": "\\ud800')
    assert field in assert_4xx_json(raw_post(api, name, body))


@pytest.mark.parametrize("name", ["login", "refresh"])
def test_form_encoded_body_is_415(api, bystander, name):
    resp = raw_post(api, name, NOT_JSON, content_type="application/x-www-form-urlencoded")
    assert "detail" in assert_4xx_json(resp, 415)


@pytest.mark.parametrize("name", ["login", "refresh"])
@pytest.mark.parametrize("body", ["[]", "[1, 2]", "42", '"text"', "null", "true"])
def test_json_that_is_not_an_object_is_400(api, bystander, name, body):
    assert_4xx_json(raw_post(api, name, body))


def test_login_missing_fields_are_400_field_errors(api, bystander):
    body = assert_4xx_json(api.post(url("login"), {}, REMOTE_ADDR=next_ip()))
    assert set(body) == {"username", "password"}


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", [123, 1.5, True, None, [], {}, ["a"], {"a": "b"}])
def test_login_wrongly_typed_field_is_400_field_error(api, user, bystander, field, value):
    body = {"username": user.username, "password": "x", field: value}
    assert field in assert_4xx_json(api.post(url("login"), body, REMOTE_ADDR=next_ip()))


def test_login_with_one_megabyte_password_is_400(api, user, bystander):
    body = {"username": user.username, "password": "p" * 1_000_000}
    assert "password" in assert_4xx_json(api.post(url("login"), body, REMOTE_ADDR=next_ip()))


def test_body_over_django_upload_limit_is_400(api, user, bystander):
    body = {"username": user.username, "password": "p" * 3_000_000}
    assert api.post(url("login"), body, REMOTE_ADDR=next_ip()).status_code == 400


def test_login_with_huge_username_is_400(api, bystander):
    body = {"username": "u" * 100_000, "password": "x"}
    assert "username" in assert_4xx_json(api.post(url("login"), body, REMOTE_ADDR=next_ip()))


def test_login_with_nul_byte_in_username_is_4xx(api, bystander):
    resp = api.post(url("login"), {"username": "a\x00b", "password": "x"}, REMOTE_ADDR=next_ip())
    assert 400 <= resp.status_code < 500 and resp.json()


def test_refresh_missing_field_is_400(api, bystander):
    assert "refresh" in assert_4xx_json(api.post(url("refresh"), {}, REMOTE_ADDR=next_ip()))


@pytest.mark.parametrize("value", [123, None, [], ["x"], {"a": 1}, True])
def test_refresh_wrongly_typed_is_400(api, bystander, value):
    assert "refresh" in assert_4xx_json(api.refresh(value))


def test_logout_all_with_bad_keep_current_is_400(api, bystander):
    for body in ({"keep_current": "maybe"}, {"keep_current": [1]}, "[]", "{bad"):
        assert_4xx_json(api.logout_all(bystander["access"], body))
    assert api.whoami(bystander["access"]).status_code == 200


# ------------------------------------------------------------------ refresh tokens
def _refresh_lookalike(length: int = 107) -> str:
    return base64.urlsafe_b64encode(b"\x01" * 80).rstrip(b"=").decode()[:length]


@pytest.mark.parametrize("token", [
    " ", "garbage", "x" * 107, "x" * 100_000, _refresh_lookalike(),
    _refresh_lookalike()[:-1] + "=", "é" * 107,
])
def test_garbage_refresh_token_is_refresh_token_invalid(api, bystander, token):
    assert_error(api.refresh(token), 401, "refresh_token_invalid")


@pytest.mark.parametrize("token", ["", "\x00" * 107, "\ud800"])
def test_blank_nul_or_surrogate_refresh_token_is_refresh_token_invalid(api, bystander, token):
    """Any string that is no token of ours is a 401, even one UTF-8 cannot
    encode; only a non-string is a 400 field error."""
    assert_error(api.refresh(token), 401, "refresh_token_invalid")


def test_truncated_refresh_token_is_refresh_token_invalid(api, bystander):
    for cut in (1, 2, 10, 106):
        assert_error(api.refresh(bystander["refresh"][:cut]), 401, "refresh_token_invalid")
    assert_error(api.refresh(bystander["refresh"] + "A"), 401, "refresh_token_invalid")


def test_access_token_given_as_refresh_is_refresh_token_invalid(api, bystander):
    assert_error(api.refresh(bystander["access"]), 401, "refresh_token_invalid")


def test_refresh_token_given_as_access_is_token_invalid(api, bystander):
    assert_error(api.whoami(bystander["refresh"]), 401, "token_invalid")


# ------------------------------------------------------------------ Authorization header
@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Bearer a b", "Bearer garbage", "Bearer a.b.c", "Bearer ...",
    "Bearer " + "x" * 100_000, "Bearer eyJhbGciOiJub25lIn0.e30.",
])
def test_bad_bearer_header_is_401_token_invalid(api, bystander, header):
    for path in ("/api/whoami/", url("session-list")):
        assert_error(api.client.get(path, HTTP_AUTHORIZATION=header), 401, "token_invalid")


def test_two_tokens_in_header_are_refused(api, bystander):
    header = f"Bearer {bystander['access']} {bystander['access']}"
    assert_error(api.client.get("/api/whoami/", HTTP_AUTHORIZATION=header), 401, "token_invalid")


def test_100kb_authorization_header_is_refused(api, bystander):
    header = "Bearer " + bystander["access"] + "A" * 100_000
    assert_error(api.client.get("/api/whoami/", HTTP_AUTHORIZATION=header), 401, "token_invalid")


@pytest.mark.parametrize("scheme", ["Basic dXNlcjpwYXNz", "Token abcdef", "Digest x=y", "x"])
def test_other_schemes_are_not_authenticated_on_protected_views(api, bystander, scheme):
    assert_error(api.client.get(url("session-list"), HTTP_AUTHORIZATION=scheme), 401,
                 "not_authenticated")
    resp = api.client.get("/api/whoami/", HTTP_AUTHORIZATION=scheme)
    assert resp.status_code == 401 and resp["WWW-Authenticate"].startswith("Bearer")


def test_forged_signature_is_token_invalid(api, bystander):
    header, payload, _sig = bystander["access"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "999999"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{_sig}"
    assert_error(api.whoami(forged), 401, "token_invalid")


# ------------------------------------------------------------------ sessions
@pytest.mark.parametrize("session_id", ["..", "%20", "00000000-0000-0000-0000-000000000000",
                                        "' OR 1=1 --", "é"])
def test_malformed_session_id_is_404(api, bystander, session_id):
    assert_error(api.delete_session(bystander["access"], session_id), 404, "not_found")


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_wrong_method_is_405_json(api, bystander, method):
    resp = getattr(api.client, method)(url("login"), REMOTE_ADDR=next_ip())
    assert_4xx_json(resp, 405)
