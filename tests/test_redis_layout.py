"""jwt_sessions.redis.layout: key names, values and the events wire format, as pure
functions, and the round trips the store plans from them (one plan for the sync and the
async face, a Redis Cluster's included)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from jwt_sessions.redis import layout, scripts
from jwt_sessions.redis.layout import HIT, MISS, REVOKED, SessionKeys
from jwt_sessions.redis.store import (
    access_check_trip,
    drop_pairs_trip,
    forget_trip,
    put_session_trip,
    rotate_trip,
)

SESSION = uuid.UUID("0123456789abcdef0123456789abcdef")


def test_every_key_of_a_session_shares_its_hash_tag():
    tag = "{ASNFZ4mrze8BI0VniavN7w}"
    keys = [layout.session_key(SESSION, "ab" * 32), layout.access_key(SESSION, "j"),
            layout.tombstone_key(SESSION), *layout.access_check_keys(SESSION, "j")]
    assert all(tag in key for key in keys), keys


def test_a_refresh_token_is_named_by_128_bits_of_its_sha256():
    assert layout.token_part("00" * 16 + "ff" * 16) == "AAAAAAAAAAAAAAAAAAAAAA"
    assert layout.token_part("ab" * 32) == layout.token_part("ab" * 16 + "cd" * 16)


@pytest.mark.parametrize(("user_id", "end"), [("7", None), ("a|b", 1_700_000_000)])
def test_a_session_value_reads_back_what_was_written(user_id, end):
    raw = layout.session_value("the-jti", user_id, end).encode()
    assert layout.parse_session_value(raw) == layout.CachedSession("the-jti", user_id, end)


@pytest.mark.parametrize("garbled", [b"", b"no-separator", b"jti|user|not-a-number"])
def test_a_garbled_session_value_is_a_value_error(garbled):
    with pytest.raises(ValueError):
        layout.parse_session_value(garbled)


@pytest.mark.parametrize(("access", "tombstone", "state"), [
    (b"t", None, HIT), (None, None, MISS), (b"t", b"1", REVOKED), (None, b"1", REVOKED)])
def test_a_tombstone_outranks_the_access_key(access, tombstone, state):
    assert layout.access_state(access, tombstone) == state


def test_event_messages_carry_every_record_in_bounded_messages():
    sessions = [uuid.uuid4() for _ in range(layout.EVENT_RECORDS + 1)]
    records = [layout.event_record(sid, f"jti-{n}") for n, sid in enumerate(sessions)]
    messages = layout.event_messages(layout.EVENT_ROTATED, records)
    assert len(messages) == 2
    parsed = [record for message in messages for record in layout.parse_event(message)[1]]
    assert parsed == [(sid, f"jti-{n}") for n, sid in enumerate(sessions)]


def test_a_jti_too_long_for_its_length_byte_is_left_out():
    record = layout.event_record(SESSION, "x" * (layout.MAX_JTI_BYTES + 1))
    assert layout.parse_event(layout.EVENT_REVOKED + record) == (
        layout.EVENT_REVOKED, [(SESSION, None)])


@pytest.mark.parametrize("garbled", [b"", b"X", layout.EVENT_REVOKED + b"short",
                                     layout.EVENT_REVOKED + SESSION.bytes + b"\x05ab"])
def test_a_garbled_event_is_a_value_error(garbled):
    with pytest.raises(ValueError):
        layout.parse_event(garbled)


def test_ttls_are_whole_milliseconds_and_never_zero():
    assert layout.ms(timedelta(seconds=1.5)) == 1500
    assert layout.ms(timedelta(0)) == 1


# ------------------------------------------------------------------ planned round trips
def commands(trip) -> list[str]:
    return [command.name for command in trip.commands]


def test_an_access_check_is_one_mget_without_counters():
    for cluster in (False, True):
        trip = access_check_trip(cluster, SESSION, "j", None)
        assert commands(trip) == ["mget"]
        assert trip.answer([[b"t", None]]) == HIT


def test_due_counters_ride_with_an_mget_outside_a_cluster():
    trip = access_check_trip(False, SESSION, "j", {"redis_hits": 2})
    assert commands(trip) == ["mget", "hincrby", "pexpire"]
    assert trip.answer([[None, b"1"], 2, True]) == REVOKED


def test_on_a_cluster_due_counters_ride_with_two_gets_of_one_slot():
    """A cluster pipeline refuses MGET: the plan every face runs reads the two keys."""
    trip = access_check_trip(True, SESSION, "j", {"redis_hits": 2})
    assert commands(trip) == ["get", "get", "hincrby", "pexpire"]
    assert [c.args for c in trip.commands if c.name == "get"] == [
        (key,) for key in layout.access_check_keys(SESSION, "j")]
    assert trip.answer([b"t", None, 2, True]) == HIT


def test_due_counters_are_optional_commands_of_every_access_check_layout():
    """A garbled stats field refuses HINCRBY: that error must not fail the check."""
    claim = (layout.dpop_proof_key("thumbprint", "jti-1", SESSION), timedelta(seconds=61))
    for cluster in (False, True):
        for with_claim in (None, claim):
            trip = access_check_trip(cluster, SESSION, "j", {"redis_hits": 2}, with_claim)
            optional = [c.name for c in trip.commands if c.optional]
            assert optional == ["hincrby", "pexpire"], (cluster, with_claim)


def test_a_dpop_proofs_claim_rides_with_the_access_check():
    """One round trip: the access keys, then SET NX of the proof's key in the session's
    slot; a claim that was there already is REPLAYED, whatever the session's state."""
    key = layout.dpop_proof_key("thumbprint", "jti-1", SESSION)
    assert key.startswith(layout.access_key(SESSION, "j").split(":a:")[0] + ":p:")
    plain = access_check_trip(False, SESSION, "j", None, (key, timedelta(seconds=61)))
    assert commands(plain) == ["evalsha"]  # by SHA: the source only to a Redis that lacks it
    assert plain.commands[0].args == (scripts.ACCESS_AND_CLAIM.sha, 3,
                                      *layout.access_check_keys(SESSION, "j"), key, 61_000)
    assert plain.answer([[b"t", None, 1]]) == HIT
    assert plain.answer([[b"t", None, 0]]) == layout.REPLAYED
    assert plain.answer([[None, b"1", 1]]) == REVOKED
    clustered = access_check_trip(True, SESSION, "j", {"redis_hits": 1},
                                  (key, timedelta(seconds=61)))
    assert commands(clustered) == ["get", "get", "set", "hincrby", "pexpire"]
    assert clustered.answer([None, None, True, 1, True]) == MISS
    assert clustered.answer([b"t", None, None, 1, True]) == layout.REPLAYED


def test_dpop_proof_keys_name_key_and_jti_and_nothing_else():
    at_login = layout.dpop_proof_key("thumbprint", "jti-1")
    assert at_login.startswith(f"{layout.jwt_settings.REDIS_KEY_PREFIX}p:")
    assert at_login != layout.dpop_proof_key("other-key", "jti-1")
    assert at_login != layout.dpop_proof_key("thumbprint", "jti-2")
    assert "jti-1" not in at_login and "thumbprint" not in at_login


# ------------------------------------------------------------------ planned writes
PAIR = SessionKeys(SESSION, "a" * 64, "jti", 7)
OTHER = SessionKeys(uuid.UUID(int=1), "b" * 64, "jti-2", 7)


def test_a_session_is_put_in_one_round_trip_and_on_a_cluster_in_two():
    """A cluster pipeline refuses scripts: the user index follows the script there."""
    plain = put_session_trip(False, PAIR, None, timedelta(days=1), timedelta(minutes=1))
    assert (commands(plain), plain.then) == (["evalsha", "hset", "pexpire"], [])
    assert plain.commands[0].script is scripts.PUT
    assert plain.answer([1, 1, True]) is True and plain.answer([0, 1, True]) is False
    clustered = put_session_trip(True, PAIR, None, timedelta(days=1), timedelta(minutes=1))
    assert commands(clustered) == ["evalsha"]
    assert [commands(trip) for trip in clustered.then] == [["hset", "pexpire"]]


def test_a_rotation_is_one_script_whose_garbled_answer_vouches_for_nothing():
    trip = rotate_trip(SESSION, "a" * 64, "b" * 64, "new", timedelta(days=1),
                       timedelta(minutes=1))
    assert commands(trip) == ["evalsha"] and trip.commands[0].args[0] == scripts.ROTATE.sha
    assert trip.answer([b"old-jti|7|-"]).user_id == "7"
    assert trip.answer([None]) is None
    assert trip.answer([b"garbled"]) is None


def test_a_revocation_announces_itself_last_and_on_a_cluster_after_its_pipeline():
    """One round trip outside a cluster (its PUBLISH may be refused: that fails
    nothing); on a cluster one key per DEL, and the PUBLISH in a round trip of its own."""
    plain = forget_trip(False, [PAIR, OTHER])
    assert commands(plain) == ["set", "set", "delete", "hdel", "publish"]
    assert [c.optional for c in plain.commands] == [False] * 4 + [True]
    assert plain.then == []
    clustered = forget_trip(True, [PAIR, OTHER])
    assert commands(clustered) == ["set", "set"] + ["delete"] * 4 + ["hdel"]
    assert all(len(c.args) == 1 for c in clustered.commands if c.name == "delete")
    assert [commands(trip) for trip in clustered.then] == [["publish"]]
    assert clustered.then[0].commands[0].optional


def test_dropping_pairs_sets_no_tombstone():
    trip = drop_pairs_trip(False, [PAIR])
    assert commands(trip) == ["delete", "publish"]
    assert layout.parse_event(trip.commands[-1].args[1]) == (
        layout.EVENT_ROTATED, [(SESSION, "jti")])
    assert commands(forget_trip(False, [])) == []
