"""Lua scripts: each job change is one atomic write that also publishes the whole job.

A job's document is kept in its hash field by field (`d:<name>`, each JSON-encoded) and
assembled in Lua after every change, so a write sends only what changes and needs no
read before it: a claim, a cancel or a finish is one round trip. The assembled
document is stored too (`doc`), so reads and snapshots stay one HGET.

Keys other than the job hash are derived from the prefix inside the scripts; that is
fine on a single Redis server (MySpinBot does not support Redis Cluster).

Leases and retry times are computed from the Redis server's clock (TIME), never from a
worker's: replicas on other hosts may disagree about the time by seconds, and a lease
judged by two clocks could be reaped while its worker is healthy. Redis 5+ replicates
scripts by their effects, so calling TIME before a write is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from . import keys

# The job object's fields, in the order the API shows them; absent ones are left out.
DOC_FIELDS = (
    "id",
    "kind",
    "state",
    "progress",
    "message",
    "created_at",
    "started_at",
    "finished_at",
    "attempt",
    "resumed",
    "error",
    "input",
    "artifacts",
    "result",
    "request_id",
)

_LUA_FIELDS = ", ".join(f"'{name}'" for name in DOC_FIELDS)
_LUA_HFIELDS = ", ".join(f"'d:{name}'" for name in DOC_FIELDS)

_PRELUDE = (
    """
local P = ARGV[1]
local FIELDS = {"""
    + _LUA_FIELDS
    + """}
local HFIELDS = {"""
    + _LUA_HFIELDS
    + """}
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
-- Store document fields given as A[at] = n, then n (name, JSON value) pairs.
local function put(key, A, at)
  local n = tonumber(A[at])
  if n > 0 then
    local args = {}
    for i = 0, n - 1 do
      args[#args + 1] = 'd:' .. A[at + 1 + 2 * i]
      args[#args + 1] = A[at + 2 + 2 * i]
    end
    redis.call('HSET', key, unpack(args))
  end
end
local function assemble(key)
  local values = redis.call('HMGET', key, unpack(HFIELDS))
  local parts = {}
  for i = 1, #FIELDS do
    if values[i] then parts[#parts + 1] = '"' .. FIELDS[i] .. '":' .. values[i] end
  end
  local doc = '{' .. table.concat(parts, ',') .. '}'
  redis.call('HSET', key, 'doc', doc)
  return doc
end
-- The one fenced write (see write_args for the block A[a..]). Returns
-- {status, cancel flag as it was, doc, attempt, handbacks}; status is 'ok', 'cancelled'
-- (a pending cancel won), 'stale' (a guard failed) or 'missing'.
local function write(key, id, A, a)
  local cur = redis.call('HMGET', key, 'state', 'attempt', 'lease', 'kind', 'created',
                         'cancel', 'handbacks')
  if not cur[1] then return {'missing', '', '', '0', '0'} end
  local flag = cur[6] or ''
  local now = now_ms()
  if (A[a] ~= '' and cur[1] ~= A[a]) or (A[a + 1] ~= '' and cur[2] ~= A[a + 1])
     or (A[a + 2] == '1' and tonumber(cur[3] or '0') > now) then
    return {'stale', flag, '', cur[2], cur[7] or '0'}
  end
  local kind, created = cur[4], cur[5]
  local status, new, event, finished = 'ok', A[a + 3], A[a + 5], A[a + 8]
  local deltas = a + 16
  local alt = deltas + 1 + 2 * tonumber(A[deltas])
  local use_alt = tonumber(A[alt]) >= 0 and flag == '1'
  if use_alt then
    -- A cancel was asked for while the job ran: honour it rather than go on.
    status, new, event, finished = 'cancelled', 'cancelled', 'cancelled', 'cancelled'
  end
  -- The hash's attempt is the run number (fencing, artifact folders); the document's
  -- counts only runs that failed or were lost, plus the current one: a run handed back
  -- on shutdown is resumed under the number it had.
  local attempt, resuming = A[a + 4], false
  if attempt == 'next' then
    attempt = tostring(tonumber(cur[2]) + 1)
    redis.call('HSET', key, 'd:attempt', tonumber(attempt) - tonumber(cur[7] or '0'))
    resuming = redis.call('HDEL', key, 'resume') == 1
  elseif attempt == '' then
    attempt = cur[2]
  end
  redis.call('HSET', key, 'state', new, 'attempt', attempt, 'd:state', '"' .. new .. '"')
  put(key, A, use_alt and alt or deltas)
  if resuming and not use_alt then
    redis.call('HSET', key, 'd:message', '"resumed after a restart"')
  end
  move(id, kind, created, cur[1], new)
  local lease = A[a + 6]
  if status ~= 'ok' or lease == '' then
    redis.call('HDEL', key, 'lease')
    redis.call('ZREM', P .. 'leases', id)
  elseif lease ~= 'keep' then
    local expiry = now + tonumber(lease)
    redis.call('HSET', key, 'lease', expiry)
    redis.call('ZADD', P .. 'leases', expiry, id)
  end
  local handbacks = cur[7] or '0'
  if status == 'ok' then
    if A[a + 7] ~= '' then redis.call('ZADD', P .. 'retry', now + tonumber(A[a + 7]), id) end
    if A[a + 14] ~= '' then redis.call('LPUSH', A[a + 14], A[a + 15]) end
    if A[a + 13] == '1' then
      handbacks = redis.call('HINCRBY', key, 'handbacks', 1)
      redis.call('HSET', key, 'd:resumed', handbacks, 'resume', '1')
    end
    if A[a + 9] ~= '' then
      local h = P .. 'metrics:duration:' .. kind
      redis.call('HINCRBY', h, A[a + 9], 1)
      redis.call('HINCRBY', h, 'count', 1)
      redis.call('HINCRBYFLOAT', h, 'sum', A[a + 10])
    end
  end
  if A[a + 12] ~= '' then redis.call('HSET', key, 'owner', A[a + 12]) end
  if finished ~= '' then
    redis.call('HINCRBY', P .. 'metrics:finished', kind .. ':' .. finished, 1)
  end
  if A[a + 11] == '1' or status ~= 'ok' then redis.call('HDEL', key, 'cancel') end
  local doc = assemble(key)
  publish(event, doc)
  return {status, flag, doc, attempt, tostring(handbacks)}
end
-- Claim a queued job: queued -> active under the next attempt number, or cancelled when
-- a cancel flag was left over (requeues honour a pending cancel, so it is a leftover).
local function claim(id, lease, owner, started)
  local block = {'queued', '', '', 'active', 'next', 'progress', lease, '', '', '', '0',
                 '1', owner, '', '', '',
                 4, 'progress', '0', 'message', '"starting"', 'started_at', started,
                 'finished_at', 'null',
                 2, 'message', '"cancelled"', 'finished_at', started}
  return write(P .. 'job:' .. id, id, block, 1)
end
-- After a lost reply: the job an earlier try of this same call claimed (the owner token
-- is the call's own), found among the running jobs, as pop_claim returns it.
local function claimed_before(t1, t2, owner)
  for _, id in ipairs(redis.call('ZRANGE', P .. 'leases', 0, -1)) do
    local cur = redis.call('HMGET', P .. 'job:' .. id, 'owner', 'state', 'doc', 'attempt',
                           'handbacks')
    if cur[1] == owner and cur[2] == 'active' then
      return {'claimed', t1 .. id .. t2, 'ok', '', cur[3], cur[4], cur[5] or '0', {}}
    end
  end
  return {'empty', {}}
end
-- Pop the next message of a queue and claim its job, skipping messages of jobs that are
-- no longer queued (a cancelled job's, a duplicate). Messages are stamped from a template
-- (messages.py): the job id sits between its two parts. A retry ('1') first returns what
-- its earlier try claimed. Returns {'empty', skipped}, {'foreign', message, skipped} or
-- {'claimed', message, claim result..., skipped}.
local function pop_claim(queue, t1, t2, lease, owner, started, retry)
  if retry == '1' then
    local before = claimed_before(t1, t2, owner)
    if before[1] == 'claimed' then return before end
  end
  local skipped = {}
  for _ = 1, 16 do
    local message = redis.call('RPOP', queue)
    if not message then return {'empty', skipped} end
    local n = #t1
    local id = string.sub(message, n + 1, n + 26)
    if message ~= t1 .. id .. t2 then return {'foreign', message, skipped} end
    local r = claim(id, lease, owner, started)
    if r[1] == 'ok' then
      return {'claimed', message, r[1], r[2], r[3], r[4], r[5], skipped}
    end
    skipped[#skipped + 1] = id
  end
  return {'empty', skipped}
end
"""
)

# KEYS[1] job hash. ARGV: prefix, id, kind, created_ms, queue key, message, cap,
# idempotency key ('' for none), idempotency ttl (s), then the document's fields
# (n, then name/JSON pairs). Returns {'ok'|'duplicate'|'full', doc}.
CREATE = (
    _PRELUDE
    + """
local id, kind, created = ARGV[2], ARGV[3], ARGV[4]
if ARGV[8] ~= '' then
  local existing = redis.call('GET', ARGV[8])
  if existing then
    local old = redis.call('HGET', P .. 'job:' .. existing, 'doc')
    if old then return {'duplicate', old} end
  end
end
if redis.call('ZCARD', P .. 'idx:' .. kind .. ':queued') >= tonumber(ARGV[7]) then
  return {'full', ''}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempt', 0, 'kind', kind, 'created', created)
put(KEYS[1], ARGV, 10)
local doc = assemble(KEYS[1])
redis.call('ZADD', P .. 'idx:all', created, id)
redis.call('ZADD', P .. 'idx:' .. kind, created, id)
move(id, kind, created, nil, 'queued')
redis.call('LPUSH', ARGV[5], ARGV[6])
if ARGV[8] ~= '' then redis.call('SET', ARGV[8], id, 'EX', ARGV[9]) end
publish('queued', doc)
return {'ok', doc}
"""
)

# KEYS[1] job hash. ARGV: prefix, id, then the block of write_args.
WRITE = _PRELUDE + "\nreturn write(KEYS[1], ARGV[2], ARGV, 3)\n"

# KEYS[1] job hash. ARGV: prefix, id, lease (ms), owner token, started_at (JSON).
CLAIM = _PRELUDE + "\nreturn claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"

# ARGV: prefix, queue key, the message template's two parts, lease, owner, started_at,
# retry ('1' when an earlier try's reply was lost).
POP_CLAIM = (
    _PRELUDE + "\nreturn pop_claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])\n"
)

# KEYS[1] job hash. ARGV: prefix, id, the next claim's queue key ('' for none), template
# parts, lease, owner, started_at, retry, then the block of write_args for this job's end.
# One round trip ends a job and takes the worker's next one, as BullMQ's
# moveToFinished does. Returns {end result..., next claim (pop_claim's reply)}. A retry
# whose end is refused (its earlier try made it) still returns that try's next claim.
FINISH_NEXT = (
    _PRELUDE
    + """
local r = write(KEYS[1], ARGV[2], ARGV, 10)
local nxt = {'empty', {}}
if ARGV[3] ~= '' then
  if r[1] == 'ok' or r[1] == 'cancelled' then
    nxt = pop_claim(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  elseif ARGV[9] == '1' then
    nxt = claimed_before(ARGV[4], ARGV[5], ARGV[7])
  end
end
return {r[1], r[2], nxt}
"""
)

# KEYS[1] job hash. ARGV: prefix, id. Extends the lease of the current attempt.
# ARGV: prefix, id, attempt, lease (ms from now). Returns {'ok'|'stale', cancel flag}.
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

# KEYS[1] job hash. ARGV: prefix, id, finished_at (JSON). A queued job is cancelled at
# once; an active one is flagged (its worker sees it at its next step).
# Returns {state it was in ('' when missing), doc after}.
CANCEL = (
    _PRELUDE
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'', ''} end
if state == 'queued' then
  local block = {'queued', '', '', 'cancelled', '', 'cancelled', '', '', 'cancelled', '', '0',
                 '1', '', '', '', '',
                 2, 'message', '"cancelled"', 'finished_at', ARGV[3], -1}
  local r = write(KEYS[1], ARGV[2], block, 1)
  return {state, r[3]}
end
if state == 'active' then redis.call('HSET', KEYS[1], 'cancel', '1') end
return {state, redis.call('HGET', KEYS[1], 'doc')}
"""
)

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
    "claim": CLAIM,
    "pop_claim": POP_CLAIM,
    "finish_next": FINISH_NEXT,
    "heartbeat": HEARTBEAT,
    "cancel": CANCEL,
    "dispatch": DISPATCH,
    "purge": PURGE,
}


def fields(values: Mapping[str, Any]) -> list[Any]:
    """Document fields as script arguments: their count, then name / JSON value pairs."""
    out: list[Any] = [len(values)]
    for name, value in values.items():
        out += [name, orjson.dumps(value)]
    return out


def write_args(
    *,
    new_state: str,
    event: str,
    changes: Mapping[str, Any],
    new_attempt: int | str = "",
    expect_state: str = "",
    expect_attempt: int | None = None,
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
    if_cancelled: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The block of one fenced write (WRITE's ARGV from its third element).

    Guards: expect_* must match; lease_expired requires the lease to have run out (by
    the server's clock). `changes` are the document fields to set (the state and the
    attempt are set from new_state / new_attempt: '' keeps the attempt, 'next' takes
    the next number). lease_ms: None drops the lease, 'keep' leaves it, a number sets
    it that many ms from now. retry_in_ms schedules a dispatch; push sends a
    (queue key, message) at once. if_cancelled, when given, is what the job becomes
    (state cancelled, these fields) if a cancel was requested: no other side effect then.
    """
    return [
        expect_state,
        "" if expect_attempt is None else str(expect_attempt),
        "1" if lease_expired else "",
        new_state,
        str(new_attempt),
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
        *fields(changes),
        *(fields(if_cancelled) if if_cancelled is not None else [-1]),
    ]


def script_args(job_id: str, block: list[Any]) -> list[Any]:
    """WRITE's ARGV: the prefix, the job id, then the block."""
    return [keys.PREFIX, job_id, *block]
