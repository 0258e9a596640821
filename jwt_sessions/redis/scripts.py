"""The Lua scripts of the store: each runs atomically inside one Redis Cluster slot
(every key it names shares its session's hash tag). A round trip sends a script by its
SHA-1 (EVALSHA); the store sends its source (EVAL) only to a Redis that lacks it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Script:
    """A script's source and the SHA-1 Redis knows it by (a name, not a protection)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode(),
                                                             usedforsecurity=False).hexdigest())


# A rate-limit counter: add, and give a new counter its TTL, in one atomic step (a
# separate EXPIRE could be lost, leaving a counter that never resets).
# KEYS: counter. ARGV: amount, ttl (ms).
COUNT = Script("""
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
""")

# Sets a session's current pair unless the session is tombstoned; drops the keys of the
# pair it replaces, if any. KEYS: tombstone, new session, new access, [old session,
# old access]. ARGV: session value, access value, session ttl, access ttl.
# ARGV[5], ARGV[6] (with old keys): the events channel and the "rotated" message.
PUT = Script("""
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
if ARGV[6] then redis.pcall('PUBLISH', ARGV[5], ARGV[6]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
return 1
""")

# Rotation on a Redis hit: atomically consume the old refresh key and install the new
# pair, so of many concurrent callers exactly one sees the old value. The new session
# value keeps the old one's user and absolute end, and neither new key's TTL passes
# that end.
# KEYS: tombstone, old session, new session, new access.
# ARGV: access key prefix, new jti, new token part, session ttl (ms), access ttl (ms),
# events channel, "rotated" message head (kind + session id; the old jti is appended).
ROTATE = Script("""
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local old = redis.call('GET', KEYS[2])
if not old then return false end
local sep = string.find(old, '|', 1, true)
local rest = string.sub(old, sep)
local ttl = tonumber(ARGV[4])
local access_ttl = tonumber(ARGV[5])
local last = string.match(rest, '|([^|]*)$')
if last ~= '-' then
  local now = redis.call('TIME')
  local left = (tonumber(last) - tonumber(now[1])) * 1000
  if left <= 0 then return false end
  if left < ttl then ttl = left end
  if left < access_ttl then access_ttl = left end
end
local old_jti = string.sub(old, 1, sep - 1)
redis.call('DEL', KEYS[2])
redis.call('DEL', ARGV[1] .. old_jti)
redis.call('SET', KEYS[3], ARGV[2] .. rest, 'PX', ttl)
redis.call('SET', KEYS[4], ARGV[3], 'PX', access_ttl)
redis.pcall('PUBLISH', ARGV[6], ARGV[7] .. string.char(#old_jti) .. old_jti)
return old
""")

# The access check of a DPoP-bound token in one command and one reply: the proof's jti
# claimed (SET NX) and the access key and tombstone read, all in the session's slot.
# KEYS: access, tombstone, proof. ARGV: the proof key's ttl (ms).
# Returns {access value or false, tombstone or false, 1 if claimed now else 0}.
ACCESS_AND_CLAIM = Script("""
local claimed = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1])
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), claimed and 1 or 0}
""")
