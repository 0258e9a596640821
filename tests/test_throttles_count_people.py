"""Throttles count people, not spellings: a username counts as the login reads it, and an
IPv6 client counts by its /64 (what one host or one customer line is given)."""
from __future__ import annotations

import itertools
import secrets

import pytest

from tests.conftest import assert_error, next_ip

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _one_window(clock):
    """Frozen time: a slow run never crosses a fixed window's boundary mid-test."""

_PADDING = [" ", "\t", "\n", "\u3000", "\u00a0", "\u2003"]
_nets = itertools.count(1)


def padded_variants(name: str, count: int) -> list[str]:
    """`count` distinct spellings the login strips back to `name` (or folds onto it)."""
    spellings = [name, name.upper(), name.title()]
    shapes = [f"{left}{spelling}{right}"
              for spelling in spellings
              for left, right in itertools.product(["", *_PADDING], repeat=2)]
    shapes.remove(name)
    return shapes[:count]


def fresh_64() -> str:
    """A /64 no other test uses, as its first four groups."""
    return f"2001:db8:{next(_nets):x}:1"


def host_in(network: str) -> str:
    """A random address inside the /64 `network`, as a privacy-extension client picks."""
    low = secrets.randbits(64)
    return f"{network}:{low >> 48:x}:{(low >> 32) & 0xFFFF:x}:{(low >> 16) & 0xFFFF:x}:" \
           f"{low & 0xFFFF:x}"


# ------------------------------------------------------------------ the username
def test_padded_variants_of_a_username_share_one_bucket(api, user):
    statuses = [api.login(variant, password="wrong").status_code
                for variant in padded_variants(user.username, 60)]
    assert statuses.count(401) == 10 and statuses.count(429) == 50, statuses
    assert_error(api.login(f" \t{user.username}\u3000"), 429, "throttled")
    assert_error(api.login(user.username), 429, "throttled")


@pytest.mark.parametrize("spelling", ["{} ", "\t{}", "\u3000{}", "{}\n"])
def test_a_padded_spelling_still_logs_in(api, user, spelling):
    """The login strips the name; the bucket folds it; neither refuses a real user."""
    assert api.login(spelling.format(user.username)).status_code == 200


def test_compatibility_forms_share_the_bucket(api, make_user):
    make_user("carol")
    for _ in range(10):
        assert_error(api.login("ＣＡＲＯＬ", password="wrong"), 401, "invalid_credentials")
    assert_error(api.login("carol"), 429, "throttled")


def test_other_names_keep_their_own_bucket(api, make_user):
    alice, alicia = make_user("alice"), make_user("alicia")
    for _ in range(10):
        api.login(" ALICE ", password="wrong")
    assert_error(api.login(alice.username), 429, "throttled")
    assert api.login(alicia.username).status_code == 200


def test_padding_beyond_the_length_limit_cannot_escape_the_bucket(api, user):
    """A name padded past the field's length is cut before stripping in a naive key:
    a fresh bucket each time, while the login strips it back to the real name."""
    for k in range(12):
        api.login(" " * k + "\t" * (300 - k) + user.username, password="wrong")
    assert_error(api.login(" " * 50 + "\t" * 250 + user.username), 429, "throttled")


# ------------------------------------------------------------------ the address
def test_logins_spread_over_one_ipv6_64_are_throttled(api):
    network = fresh_64()
    for n in range(20):  # distinct names: only the per-address scope can trip
        assert_error(api.login(f"nobody{n}", password="wrong", ip=host_in(network)), 401,
                     "invalid_credentials")
    for n in range(5):
        assert_error(api.login(f"else{n}", ip=host_in(network)), 429, "throttled")


def test_refreshes_spread_over_one_ipv6_64_are_throttled(api, tokens):
    network = fresh_64()
    statuses = [api.refresh("x" * 107, REMOTE_ADDR=host_in(network)).status_code
                for _ in range(65)]
    assert statuses.count(401) == 60 and statuses.count(429) == 5, statuses
    assert_error(api.refresh(tokens["refresh"], REMOTE_ADDR=host_in(network)), 429,
                 "throttled")


def test_another_64_has_its_own_bucket(api, user):
    network = fresh_64()
    for n in range(20):
        api.login(f"nobody{n}", password="wrong", ip=host_in(network))
    assert_error(api.login(user.username, ip=host_in(network)), 429, "throttled")
    assert api.login(user.username, ip=host_in(fresh_64())).status_code == 200


def test_an_ipv4_mapped_address_counts_as_its_ipv4(api):
    ip = next_ip()
    for n in range(10):
        api.login(f"nobody{n}", password="wrong", ip=ip)
    for n in range(10):
        api.login(f"other{n}", password="wrong", ip=f"::ffff:{ip}")
    assert_error(api.login("late", ip=ip), 429, "throttled")


def test_ipv4_clients_count_by_address(api, user):
    """Only IPv6 is widened: one busy IPv4 address leaves its neighbours alone."""
    ip = next_ip()
    for n in range(20):
        api.login(f"nobody{n}", password="wrong", ip=ip)
    assert_error(api.login(user.username, ip=ip), 429, "throttled")
    neighbour = ip.rsplit(".", 1)[0] + "." + str((int(ip.rsplit(".", 1)[1]) + 128) % 256)
    assert api.login(user.username, ip=neighbour).status_code == 200
