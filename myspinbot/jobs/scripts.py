"""Lua scripts: each job change is one atomic write that also publishes the whole job.

Keys other than the job hash are derived from the prefix inside the scripts; that
is fine on a single Redis server (MySpinBot does not support Redis Cluster).

Leases and retry times are computed from the Redis server's clock (TIME), never
from a worker's: replicas on other hosts may disagree about the time by seconds,
and a lease judged by two clocks could be reaped while its worker is healthy.
Redis 5+ replicates scripts by their effects, so calling TIME before a write is safe.
"""

from __future__ import annotations

from typing import Any

from . import keys

_PRELUDE = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
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

# KEYS[1] job hash. ARGV (see write_args): guards, then the new record and its side effects.
# Returns {'ok'|'stale'|'missing'|'cancelled', cancel flag as it was}.
WRITE = (
    _PRELUDE
    + """
local id = ARGV[2]
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'version', 'lease', 'kind',
                       'created', 'cancel')
if not cur[1] then return {'missing', ''} end
local now = now_ms()
if (ARGV[3] ~= '' and cur[1] ~= ARGV[3]) or (ARGV[4] ~= '' and cur[2] ~= ARGV[4])
   or (ARGV[5] ~= '' and cur[3] ~= ARGV[5])
   or (ARGV[6] == '1' and tonumber(cur[4] or '0') > now) then
  return {'stale', cur[7] or ''}
end
local kind, created, flag = cur[5], cur[6], cur[7] or ''
local status, new, doc, event, finished = 'ok', ARGV[7], ARGV[9], ARGV[10], ARGV[13]
if ARGV[21] ~= '' and flag == '1' then
  -- A cancel was asked for while the job ran: honour it rather than queue the job again.
  status, new, doc, event, finished = 'cancelled', 'cancelled', ARGV[21], 'cancelled', 'cancelled'
end
redis.call('HSET', KEYS[1], 'doc', doc, 'state', new, 'attempt', ARGV[8])
redis.call('HINCRBY', KEYS[1], 'version', 1)
move(id, kind, created, cur[1], new)
local lease = ARGV[11]
if status ~= 'ok' or lease == '' then
  redis.call('HDEL', KEYS[1], 'lease')
  redis.call('ZREM', P .. 'leases', id)
elseif lease ~= 'keep' then
  local expiry = now + tonumber(lease)
  redis.call('HSET', KEYS[1], 'lease', expiry)
  redis.call('ZADD', P .. 'leases', expiry, id)
end
if status == 'ok' then
  if ARGV[12] ~= '' then redis.call('ZADD', P .. 'retry', now + tonumber(ARGV[12]), id) end
  if ARGV[19] ~= '' then redis.call('LPUSH', ARGV[19], ARGV[20]) end
  if ARGV[18] == '1' then redis.call('HINCRBY', KEYS[1], 'handbacks', 1) end
  if ARGV[14] ~= '' then
    local h = P .. 'metrics:duration:' .. kind
    redis.call('HINCRBY', h, ARGV[14], 1)
    redis.call('HINCRBY', h, 'count', 1)
    redis.call('HINCRBYFLOAT', h, 'sum', ARGV[15])
  end
end
if ARGV[17] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[17]) end
if finished ~= '' then
  redis.call('HINCRBY', P .. 'metrics:finished', kind .. ':' .. finished, 1)
end
if ARGV[16] == '1' or status ~= 'ok' then redis.call('HDEL', KEYS[1], 'cancel') end
publish(event, doc)
return {status, flag}
"""
)

# KEYS[1] job hash. ARGV: prefix, id, attempt, lease (ms from now).
# Extends the lease of the current attempt; returns {'ok'|'stale', cancel flag}.
HEARTBEAT = (
    _PRELUDE
    + """
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'cancel')
if cur[1] ~= 'active' or cur[2] ~= ARGV[3] then return {'stale', cur[3] or ''} end
local expiry = now_ms() + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'lease', expiry)
redis.call('ZADD', P .. 'leases', expiry, ARGV[2])
return {'ok', cur[3] or ''}
"""
)

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

# KEYS[1] job hash. ARGV: prefix, id. Deletes a finished job's record (never a live one).
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
redis.call('HDEL', P .. 'sweep', id)
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
    lease_expired: bool = False,
    lease_ms: int | str | None = None,
    retry_in_ms: int | None = None,
    finished: str = "",
    duration_bucket: str = "",
    duration: float = 0.0,
    clear_cancel: bool = False,
    owner: str = "",
    handback: bool = False,
    push: tuple[str, bytes] | None = None,
    cancelled_doc: str = "",
) -> list[Any]:
    """The ARGV of WRITE.

    Guards: expect_* must match; lease_expired requires the lease to have run out (by
    the server's clock). lease_ms: None drops the lease, 'keep' leaves it, a number
    sets it that many ms from now. retry_in_ms schedules a dispatch; push sends a
    (queue key, message) at once. cancelled_doc, when given, is written instead of
    `doc` (state cancelled) if a cancel was requested: no other side effect then.
    """
    return [
        keys.PREFIX,
        job_id,
        expect_state,
        "" if expect_attempt is None else str(expect_attempt),
        expect_version,
        "1" if lease_expired else "",
        new_state,
        str(new_attempt),
        doc,
        event,
        "" if lease_ms is None else str(lease_ms),
        "" if retry_in_ms is None else str(max(0, int(retry_in_ms))),
        finished,
        duration_bucket,
        repr(float(duration)),
        "1" if clear_cancel else "",
        owner,
        "1" if handback else "",
        push[0] if push else "",
        push[1] if push else "",
        cancelled_doc,
    ]
