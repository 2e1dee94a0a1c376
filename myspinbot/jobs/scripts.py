"""Lua scripts: each job change is one atomic write that also publishes the whole job.

Keys other than the job hash are derived from the prefix inside the scripts; that
is fine on a single Redis server (MySpinBot does not support Redis Cluster).
"""

from __future__ import annotations

from typing import Any

from . import keys

_PRELUDE = """
local P = ARGV[1]
local function move(id, kind, created, old, new)
  if old == new then return end
  if old then redis.call('ZREM', P .. 'idx:' .. kind .. ':' .. old, id) end
  redis.call('ZADD', P .. 'idx:' .. kind .. ':' .. new, created, id)
end
local function publish(event, doc)
  if event ~= '' then
    redis.call('PUBLISH', P .. 'events', '{"type":"' .. event .. '","job":' .. doc .. '}')
  end
end
"""

# KEYS[1] job hash. ARGV: prefix, id, kind, created_ms, doc, queue key, message, cap,
# idempotency key ('' for none), idempotency ttl (s).
CREATE = (
    _PRELUDE
    + """
local id, kind, created, doc = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if ARGV[9] ~= '' then
  local existing = redis.call('GET', ARGV[9])
  if existing then
    local old = redis.call('HGET', P .. 'job:' .. existing, 'doc')
    if old then return {'duplicate', old} end
  end
end
if redis.call('ZCARD', P .. 'idx:' .. kind .. ':queued') >= tonumber(ARGV[8]) then
  return {'full', ''}
end
redis.call('HSET', KEYS[1], 'doc', doc, 'state', 'queued', 'attempt', 0, 'kind', kind,
           'created', created, 'version', 1)
redis.call('ZADD', P .. 'idx:all', created, id)
redis.call('ZADD', P .. 'idx:' .. kind, created, id)
move(id, kind, created, nil, 'queued')
redis.call('LPUSH', ARGV[6], ARGV[7])
if ARGV[9] ~= '' then redis.call('SET', ARGV[9], id, 'EX', ARGV[10]) end
publish('queued', doc)
return {'ok', doc}
"""
)

# KEYS[1] job hash. ARGV (see write_args): guards, then the new record and side effects.
# Returns {'ok'|'stale'|'missing', cancel flag}.
WRITE = (
    _PRELUDE
    + """
local id = ARGV[2]
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'version', 'lease', 'kind',
                       'created', 'cancel')
if not cur[1] then return {'missing', ''} end
if (ARGV[3] ~= '' and cur[1] ~= ARGV[3]) or (ARGV[4] ~= '' and cur[2] ~= ARGV[4])
   or (ARGV[5] ~= '' and cur[3] ~= ARGV[5])
   or (ARGV[6] ~= '' and tonumber(cur[4] or '0') > tonumber(ARGV[6])) then
  return {'stale', cur[7] or ''}
end
local kind, created, new = cur[5], cur[6], ARGV[7]
redis.call('HSET', KEYS[1], 'doc', ARGV[9], 'state', new, 'attempt', ARGV[8])
redis.call('HINCRBY', KEYS[1], 'version', 1)
move(id, kind, created, cur[1], new)
if ARGV[11] == '' then
  redis.call('HDEL', KEYS[1], 'lease')
  redis.call('ZREM', P .. 'leases', id)
elseif ARGV[11] ~= 'keep' then
  redis.call('HSET', KEYS[1], 'lease', ARGV[11])
  redis.call('ZADD', P .. 'leases', ARGV[11], id)
end
if ARGV[12] ~= '' then redis.call('ZADD', P .. 'retry', ARGV[12], id) end
if ARGV[13] ~= '' then
  redis.call('HINCRBY', P .. 'metrics:finished', kind .. ':' .. ARGV[13], 1)
end
if ARGV[14] ~= '' then
  local h = P .. 'metrics:duration:' .. kind
  redis.call('HINCRBY', h, ARGV[14], 1)
  redis.call('HINCRBY', h, 'count', 1)
  redis.call('HINCRBYFLOAT', h, 'sum', ARGV[15])
end
if ARGV[16] == '1' then redis.call('HDEL', KEYS[1], 'cancel') end
publish(ARGV[10], ARGV[9])
return {'ok', cur[7] or ''}
"""
)

# KEYS[1] job hash. ARGV: prefix, id, attempt, lease until (ms).
# Extends the lease of the current attempt; returns {'ok'|'stale', cancel flag}.
HEARTBEAT = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'cancel')
if cur[1] ~= 'active' or cur[2] ~= ARGV[3] then return {'stale', cur[3] or ''} end
redis.call('HSET', KEYS[1], 'lease', ARGV[4])
redis.call('ZADD', ARGV[1] .. 'leases', ARGV[4], ARGV[2])
return {'ok', cur[3] or ''}
"""

# KEYS[1] job hash. ARGV: prefix, id. Flags an active job for cancellation.
REQUEST_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'active' then redis.call('HSET', KEYS[1], 'cancel', '1') end
return state or ''
"""

# KEYS[1] job hash. ARGV: prefix, id, queue key, message.
# Hands a due retry to its queue if the job is still waiting for it.
DISPATCH = """
redis.call('ZREM', ARGV[1] .. 'retry', ARGV[2])
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('LPUSH', ARGV[3], ARGV[4])
  return 1
end
return 0
"""

# KEYS[1] job hash. ARGV: prefix, id. Deletes a finished job's record.
PURGE = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'kind')
if cur[1] ~= 'completed' and cur[1] ~= 'failed' and cur[1] ~= 'cancelled' then return 0 end
local P, id = ARGV[1], ARGV[2]
redis.call('DEL', KEYS[1])
redis.call('ZREM', P .. 'idx:all', id)
redis.call('ZREM', P .. 'idx:' .. cur[2], id)
redis.call('ZREM', P .. 'idx:' .. cur[2] .. ':' .. cur[1], id)
redis.call('ZREM', P .. 'leases', id)
redis.call('ZREM', P .. 'retry', id)
return 1
"""

SOURCES = {
    "create": CREATE,
    "write": WRITE,
    "heartbeat": HEARTBEAT,
    "request_cancel": REQUEST_CANCEL,
    "dispatch": DISPATCH,
    "purge": PURGE,
}


def write_args(
    job_id: str,
    doc: str,
    *,
    new_state: str,
    new_attempt: int,
    event: str,
    expect_state: str = "",
    expect_attempt: int | None = None,
    expect_version: str = "",
    lease_expired_before: int | None = None,
    lease_until: int | str | None = None,
    retry_due: int | None = None,
    finished: str = "",
    duration_bucket: str = "",
    duration: float = 0.0,
    clear_cancel: bool = False,
) -> list[Any]:
    """The ARGV of WRITE. lease_until: None drops the lease, 'keep' leaves it, ms sets it."""
    return [
        keys.PREFIX,
        job_id,
        expect_state,
        "" if expect_attempt is None else str(expect_attempt),
        expect_version,
        "" if lease_expired_before is None else str(lease_expired_before),
        new_state,
        str(new_attempt),
        doc,
        event,
        "" if lease_until is None else str(lease_until),
        "" if retry_due is None else str(retry_due),
        finished,
        duration_bucket,
        repr(float(duration)),
        "1" if clear_cancel else "",
    ]
