"""A secured Redis: TLS (rediss://), a password and an ACL user limited to the key prefix,
all through django-redis settings; a misconfigured connection never makes a 500; and
nothing stored in Redis lets its reader use a token."""
from __future__ import annotations

import base64
import ipaddress
import logging
import os
import secrets
from datetime import datetime, timedelta, timezone
from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command

from jwt_sessions.redis import layout
from jwt_sessions.redis.mirror import circuit
from jwt_sessions.testing import redis_cache
from jwt_sessions.tokens import parse_refresh_token, sha256_hex
from tests.async_checks import assert_async_check_answers
from tests.conftest import assert_error
from tests.redis_servers import RedisServer, forget_redis_pools, free_port

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_PASSWORD = secrets.token_urlsafe(16)
ALICE, ALICE_PASSWORD = "alice", secrets.token_urlsafe(16)
# What docs/securing-redis.md recommends: the key prefix only, no dangerous commands.
ALICE_ACL = ["on", f">{ALICE_PASSWORD}", "~jwts:*", "&jwts:*", "+@all", "-@dangerous"]


# ------------------------------------------------------------------ a TLS Redis
def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost that is also its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt_sessions test Redis")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SecuredRedis(RedisServer):
    """redis-server listening on TLS only, with `requirepass` (`default` user)."""

    def __init__(self, cert: Path, key: Path) -> None:
        port = free_port()
        super().__init__(port, [
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no", "--requirepass", ADMIN_PASSWORD])
        self.ca = cert

    def url_for(self, username: str | None, password: str | None, scheme="rediss") -> str:
        credentials = f"{username or ''}:{password}@" if password else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}/0"

    def client(self, **kwargs):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=ADMIN_PASSWORD,
                           ssl=True, ssl_ca_certs=str(self.ca), socket_timeout=5, **kwargs)


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory):
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    server = SecuredRedis(cert, key)
    try:
        try:
            server.start()
        except RuntimeError as exc:  # e.g. a redis-server built without TLS
            if os.environ.get("JWT_SESSIONS_CI"):
                raise
            pytest.skip(f"cannot start a TLS redis-server here: {exc}")
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", ALICE, *ALICE_ACL)
        yield server
    finally:
        server.close()


@pytest.fixture
def use_redis(settings, secured_redis):
    """use_redis(url, options={}, **pool_kwargs): the default cache (so jwt_sessions) on
    that URL, with extra django-redis OPTIONS and connection pool arguments."""

    def use(url: str, options: dict | None = None, **pool_kwargs) -> None:
        forget_redis_pools()
        cache = redis_cache(url, timeout=1)
        cache["KEY_PREFIX"] = "jwts"  # the throttles' keys fall under the ACL's ~jwts:*
        cache["OPTIONS"].update(options or {})
        cache["OPTIONS"]["CONNECTION_POOL_KWARGS"] = pool_kwargs
        settings.CACHES = {"default": cache}

    yield use
    forget_redis_pools()


def _full_flow(api, user) -> None:
    data = api.login_ok(user.username)
    assert api.whoami(data["access"]).status_code == 200
    new = api.refresh_ok(data["refresh"])
    assert_error(api.whoami(data["access"]), 401, "token_invalid")
    assert api.whoami(new["access"]).status_code == 200
    listed = api.sessions(new["access"]).json()
    assert [s["id"] for s in listed if s["current"]] == [new["session_id"]]
    assert api.logout(new["access"]).status_code == 204
    assert_error(api.whoami(new["access"]), 401, "session_revoked")
    assert_error(api.refresh(new["refresh"]), 401, "session_revoked")


@pytest.mark.parametrize("credentials_in", ["url", "options"])
def test_full_flow_over_tls_with_an_acl_user(api, user, secured_redis, use_redis, queries,
                                             caplog, credentials_in):
    if credentials_in == "url":
        use_redis(secured_redis.url_for(ALICE, ALICE_PASSWORD),
                  ssl_ca_certs=str(secured_redis.ca))
    else:  # the form docs/securing-redis.md shows: the password kept out of LOCATION
        use_redis(secured_redis.url_for(None, None), {"PASSWORD": ALICE_PASSWORD},
                  username=ALICE, ssl_ca_certs=str(secured_redis.ca))
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        data = api.login_ok(user.username)
        with queries() as q:
            assert api.whoami(data["access"]).status_code == 200
        assert q.captured_queries == []  # Redis vouched: the secured connection works
        _full_flow(api, user)
        out, err = StringIO(), StringIO()
        call_command("clearjwtsessions", stdout=out, stderr=err)
    assert "Replayed" in out.getvalue() and err.getvalue() == ""
    # No Redis error, no throttle falling back to "let through".
    assert [r.getMessage() for r in caplog.records if r.name == "jwt_sessions"] == []
    assert not circuit.needs_replay
    with secured_redis.client() as admin:
        stored = [key.decode() for key in admin.scan_iter()]
    assert stored and all(key.startswith("jwts:") for key in stored)
    assert any(key.startswith("jwts:t:") for key in stored)  # the throttles' counters


@pytest.mark.parametrize("credentials_in", ["url", "options"])
def test_an_async_access_check_with_counters_due_answers_over_tls_with_an_acl_user(
        api, user, secured_redis, use_redis, queries, monkeypatch, credentials_in):
    if credentials_in == "url":
        use_redis(secured_redis.url_for(ALICE, ALICE_PASSWORD),
                  ssl_ca_certs=str(secured_redis.ca))
    else:
        use_redis(secured_redis.url_for(None, None), {"PASSWORD": ALICE_PASSWORD},
                  username=ALICE, ssl_ca_certs=str(secured_redis.ca))
    assert_async_check_answers(api, user.username, queries, monkeypatch)


def test_the_acl_user_is_really_confined_to_the_prefix(secured_redis):
    import redis

    with redis.Redis.from_url(secured_redis.url_for(ALICE, ALICE_PASSWORD),
                              ssl_ca_certs=str(secured_redis.ca)) as alice:
        alice.set("jwts:probe", 1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.set("elsewhere:probe", 1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            alice.flushdb()


def test_events_flow_over_tls_under_the_acl(api, user, secured_redis, use_redis):
    from jwt_sessions import events
    from tests.event_consumers import Heard, is_event

    use_redis(secured_redis.url_for(ALICE, ALICE_PASSWORD), ssl_ca_certs=str(secured_redis.ca))
    heard = Heard()
    unsubscribe = events.subscribe(heard)
    try:
        assert events.wait_until_healthy(5)
        data = api.login_ok(user.username)
        assert api.logout(data["access"]).status_code == 204
        heard.wait_for(is_event(events.REVOKED, data["session_id"]))
    finally:
        unsubscribe()


def test_an_acl_without_the_channels_still_revokes_but_trusts_no_cache(
        api, user, secured_redis, use_redis, jwt_settings):
    from datetime import timedelta

    from jwt_sessions import events

    with secured_redis.client() as admin:
        admin.execute_command("ACL", "SETUSER", "carol", "on", f">{ALICE_PASSWORD}",
                              "~jwts:*", "resetchannels", "+@all", "-@dangerous")
    use_redis(secured_redis.url_for("carol", ALICE_PASSWORD),
              ssl_ca_certs=str(secured_redis.ca))
    jwt_settings(LOCAL_CACHE={"max_age": timedelta(seconds=30)})
    data = api.login_ok(user.username)
    assert api.whoami(data["access"]).status_code == 200
    new = api.refresh_ok(data["refresh"])  # the rotation script's PUBLISH is refused
    assert_error(api.whoami(data["access"]), 401, "token_invalid")
    assert api.logout(new["access"]).status_code == 204  # so is the pipeline's
    assert_error(api.whoami(new["access"]), 401, "session_revoked")
    assert not circuit.needs_replay  # the revocation itself went through
    assert not events.wait_until_healthy(0.5)  # the receiver cannot subscribe


MISCONFIGURED = {
    "wrong password": ({"username": ALICE, "password": "wrong"}, {}),
    "unknown user": ({"username": "mallory", "password": ALICE_PASSWORD}, {}),
    "no credentials": ({"username": None, "password": None}, {}),
    "untrusted certificate": ({"username": ALICE, "password": ALICE_PASSWORD}, {"ca": None}),
    "plain TCP to the TLS port": ({"username": ALICE, "password": ALICE_PASSWORD},
                                  {"scheme": "redis"}),
    "key prefix outside the ACL": ({"username": ALICE, "password": ALICE_PASSWORD},
                                   {"prefix": "other:"}),
}


@pytest.fixture(params=list(MISCONFIGURED), ids=list(MISCONFIGURED))
def misconfigured(request, secured_redis, use_redis, jwt_settings):
    credentials, variant = MISCONFIGURED[request.param]
    url = secured_redis.url_for(credentials["username"], credentials["password"],
                                scheme=variant.get("scheme", "rediss"))
    ca = variant.get("ca", str(secured_redis.ca))
    use_redis(url, **({"ssl_ca_certs": ca} if ca and url.startswith("rediss") else {}))
    if "prefix" in variant:
        jwt_settings(REDIS_KEY_PREFIX=variant["prefix"])
    return request.param


def test_misconfigured_redis_falls_back_to_the_database(api, user, misconfigured, caplog):
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        _full_flow(api, user)
    assert "unavailable" in caplog.text  # said once, then the circuit breaker is open
    assert ALICE_PASSWORD not in caplog.text


def test_misconfigured_redis_with_policy_deny_answers_503(api, user, misconfigured,
                                                           jwt_settings):
    jwt_settings(REDIS_FAILURE_POLICY="deny")
    assert_error(api.login(user.username), 503, "service_unavailable")


# ------------------------------------------------------------------ nothing usable stored
def _dump(conn) -> str:
    """Every key and value of the database, as one searchable text."""
    parts = []
    for key in conn.scan_iter():
        kind = conn.type(key).decode()
        value = {"string": conn.get, "set": conn.smembers, "hash": conn.hgetall,
                 "list": lambda k: conn.lrange(k, 0, -1)}[kind](key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def _forms(secret: bytes) -> list[str]:
    return [repr(secret)[2:-1], secret.hex(), base64.urlsafe_b64encode(secret).decode()[:40],
            base64.b64encode(secret).decode()[:40]]


def test_redis_holds_no_token_and_no_session_secret(api, user, redis_conn):
    first = api.login_ok(user.username)
    second = api.refresh_ok(first["refresh"])
    api.whoami(second["access"])
    dump = _dump(redis_conn)
    # the dump does hold the session's keys
    assert layout.token_part(sha256_hex(second["refresh"])) in dump
    for pair in (first, second):
        assert pair["refresh"] not in dump
        assert pair["access"] not in dump
        assert pair["access"].rsplit(".", 1)[1] not in dump  # nor a JWT signature
    for form in _forms(parse_refresh_token(second["refresh"]).secret):
        assert form not in dump


def test_a_dpop_bound_session_over_tls_with_an_acl_user(api, user, secured_redis, use_redis,
                                                        caplog):
    """The DPoP claim (a script with the access check) is allowed to the ACL user, and
    its keys stay under the prefix."""
    from tests.dpop_keys import ProofKey

    use_redis(secured_redis.url_for(ALICE, ALICE_PASSWORD), ssl_ca_certs=str(secured_redis.ca))
    key, whoami = ProofKey(), "http://testserver/api/whoami/"
    with caplog.at_level(logging.WARNING, logger="jwt_sessions"):
        access = api.login_ok(user.username,
                              HTTP_DPOP=key.proof("POST", "http://testserver/auth/login/"))["access"]
        proof = key.proof("GET", whoami, token=access)
        headers = {"HTTP_AUTHORIZATION": f"DPoP {access}", "HTTP_DPOP": proof}
        assert api.client.get("/api/whoami/", **headers).status_code == 200
        assert api.client.get("/api/whoami/", **headers).status_code == 401  # replayed
    assert [r.getMessage() for r in caplog.records if r.name == "jwt_sessions"] == []
    with secured_redis.client() as admin:
        proofs = [k.decode() for k in admin.scan_iter() if b":p:" in k or k.startswith(b"jwts:p:")]
    assert len(proofs) == 2 and all(k.startswith("jwts:") for k in proofs)
