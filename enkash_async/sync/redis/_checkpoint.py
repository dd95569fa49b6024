"""The checkpoint of a distributed sync: one Redis hash per target and checkpoint name.

Keys of checkpoint ``C`` of a target (``enkash:ckpt:{target}:C``): the hash itself maps
each ``unique_ref_no`` to ``i:<owner>`` (intended by that owner; ``i`` alone, from older
versions, is a dead owner's) or ``d:<customerId>:<fingerprint>`` (done, as the row whose
fingerprint the sync computed; ``d:<customerId>`` from older versions has none, and either
part may be empty when unknown); ``...:owners`` is a sorted set
of intent owners scored by their lease's expiry (Redis ``TIME``, ms); ``...:epoch`` is a
random token set when the checkpoint is first used. A claim that finds a different epoch
or none (Redis was flushed, restarted without persistence, or evicted the keys) raises
:class:`StateLostError` instead of taking refs Redis forgot as never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

import redis.asyncio as aioredis

from enkash_async.errors import FieldError, ValidationError
from enkash_async.sync._checkpoint import (
    LEASE_SECONDS,
    Claim,
    RefState,
    SyncTarget,
    Written,
    owner_id,
    unknown_state,
)
from enkash_async.sync.redis._connection import (
    StateLostError,
    SyncStoreError,
    redacted,
    redis_errors,
    target_tag,
    text,
)

__all__ = ["RedisCheckpoint", "checkpoint_epoch", "checkpoint_key"]

logger = logging.getLogger("enkash_async.sync")

_DONE: Final = "d"
_INTENDED: Final = "i"
# A done value: a bounded customer id and fingerprint, each optional (hostile Redis: any
# other value is a state this version does not know).
_DONE_VALUE: Final = re.compile(r"d(?::([A-Za-z0-9_-]{0,64})(?::([!-9;-~]{1,64}))?)?")
_FINGERPRINT: Final = re.compile(r"[!-9;-~]{1,64}")
# The longest value read as an intent (an owner names the checkpoint, host and process).
_MAX_VALUE: Final = 1000
# Refs per HMGET / HSCAN step.
_READ_CHUNK: Final = 1000

# KEYS: hash, owners, epoch. ARGV: owner, lease ms, lost (0/1), epoch ('' adopts), refs...
# Returns {epoch, claims} where a claim is n(ew), r(eclaimed), h(eld), d(one), or
# ?<value> for a value this version does not know; {false} when the epoch is not ours.
_CLAIM: Final = """
-- A done value as _DONE_VALUE reads it: d, d:<id>, d:<id>:<fingerprint> (bounded).
local function is_done(v)
  if v == 'd' then return true end
  local id = string.match(v, '^d:([%w_%-]*)$')
  if id then return #id <= 64 end
  local fp
  id, fp = string.match(v, '^d:([%w_%-]*):([!-9;-~]+)$')
  return id ~= nil and #id <= 64 and #fp <= 64
end
local epoch = redis.call('GET', KEYS[3])
if ARGV[4] == '' then
  if not epoch then
    epoch = ARGV[5]
    redis.call('SET', KEYS[3], epoch)
  end
elseif epoch ~= ARGV[4] then
  return {0, epoch or ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
local mine = 'i:' .. ARGV[1]
local out = {}
for i = 6, #ARGV do
  local ref = ARGV[i]
  local v = redis.call('HGET', KEYS[1], ref)
  local claim
  if not v then
    redis.call('HSET', KEYS[1], ref, mine)
    if ARGV[3] == '1' then claim = 'r' else claim = 'n' end
  elseif #v > MAX_VALUE then
    claim = '?' .. string.sub(v, 1, 40)
  elseif is_done(v) then
    claim = 'd'
  elseif v == mine then
    claim = 'r'
  elseif v == 'i' or string.sub(v, 1, 2) == 'i:' then
    local lease = redis.call('ZSCORE', KEYS[2], string.sub(v, 3))
    if v ~= 'i' and lease and tonumber(lease) > now then
      claim = 'h'
    else
      redis.call('HSET', KEYS[1], ref, mine)
      claim = 'r'
    end
  else
    claim = '?' .. string.sub(v, 1, 40)
  end
  out[#out + 1] = claim
end
return {1, epoch, out}
""".replace("MAX_VALUE", str(_MAX_VALUE))

# KEYS: owners. ARGV: owner, lease ms. Renews the lease; forgets owners dead for a day.
_RENEW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)
return 1
"""

_CLAIMS: Final = {"n": Claim.NEW, "r": Claim.RECLAIMED, "h": Claim.HELD, "d": Claim.DONE}
# Refs per claim script: one script call blocks Redis while it runs.
_CLAIM_CHUNK: Final = 500


def checkpoint_key(target: SyncTarget, name: str) -> str:
    """The Redis key of checkpoint ``name`` of ``target`` (its hash; the other keys add a
    suffix)."""
    return f"enkash:ckpt:{target_tag(target)}:{name}"


async def checkpoint_epoch(redis: aioredis.Redis, url: str, target: SyncTarget, name: str) -> str:
    """The epoch of checkpoint ``name`` of ``target``, set now if it has none (a run
    records it at submit; its workers stop if the checkpoint's epoch changes)."""
    key = f"{checkpoint_key(target, name)}:epoch"
    async with redis_errors(url, "reading the checkpoint's epoch"):
        await redis.set(key, secrets.token_hex(8), nx=True)
        value = await redis.get(key)
    return text(value) if value is not None else ""


class RedisCheckpoint:
    """A :class:`~enkash_async.sync.CheckpointStore` in Redis, for one target and one
    checkpoint name shared by every run and worker that names it.

    Each store is an intent owner whose lease (``lease`` seconds, Redis's clock) it renews
    while open and gives up on :meth:`aclose`. Every call raises ``SyncStoreError`` when
    Redis fails, and :class:`StateLostError` (a ``SyncStoreError``) when the checkpoint's
    ``epoch`` is not the one this store started with (pass ``epoch`` to pin one, as a run's
    workers do). ``lost_state`` (after Redis lost its data) makes every ref Redis does not
    know count as intended, so it is looked up by exact ``uniqueRefNo`` before it is
    created again. A value this version does not know raises ``CheckpointError``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        url: str,
        target: SyncTarget,
        run: str,
        *,
        lost_state: bool = False,
        epoch: str | None = None,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self._redis = redis
        self._url = url
        self.target = target
        self.run = run
        self.key = checkpoint_key(target, run)
        self.lost_state = lost_state
        self.epoch = epoch
        self.owner = owner_id(run)
        self.lease = lease
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._renewer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RedisCheckpoint({self.key!r}, lost_state={self.lost_state})"

    @property
    def _where(self) -> str:
        return f"{redacted(self._url)} {self.key}"

    def _state(self, ref: str, value: bytes | str) -> RefState:
        return RefState.INTENDED if self._parse(ref, value) is None else RefState.DONE

    def _parse(self, ref: str, value: bytes | str) -> Written | None:
        """What a done value records; None for an intent; ``CheckpointError`` otherwise."""
        found = text(value)
        if found == _INTENDED or (found.startswith(_INTENDED + ":") and len(found) <= _MAX_VALUE):
            return None
        done = _DONE_VALUE.fullmatch(found)
        if done is None:
            raise unknown_state(ref, found, store=self._where)
        return Written(done.group(1) or None, done.group(2))

    async def states(self, refs: Sequence[str]) -> Mapping[str, RefState]:
        """The state of each of ``refs`` this checkpoint knows."""
        if not refs:
            return {}
        async with redis_errors(self._url, "reading the checkpoint"):
            values = await self._redis.hmget(self.key, list(refs))
        found: dict[str, RefState] = {}
        for ref, value in zip(refs, values, strict=True):
            if value is None:
                if self.lost_state:
                    found[ref] = RefState.INTENDED
            else:
                found[ref] = self._state(ref, value)
        return found

    async def claim(self, refs: Sequence[str]) -> Mapping[str, Claim]:
        """Take the intent of each of ``refs`` no live owner holds (one atomic script per
        500 refs); what became of each ref."""
        unique = list(dict.fromkeys(refs))
        claims: dict[str, Claim] = {}
        for start in range(0, len(unique), _CLAIM_CHUNK):
            chunk = unique[start : start + _CLAIM_CHUNK]
            args: list[str | int] = [self.owner, int(self.lease * 1000), int(self.lost_state)]
            args += [self.epoch or "", secrets.token_hex(8), *chunk]
            async with redis_errors(self._url, "claiming intents in the checkpoint"):
                reply = await self._claim(keys=self._keys(), args=args)
            if not int(reply[0]):
                raise self._lost(text(reply[1]))
            self.epoch = text(reply[1])
            for ref, raw in zip(chunk, reply[2], strict=True):
                code = text(raw)
                if code not in _CLAIMS:
                    raise unknown_state(ref, code[1:], store=self._where)
                claims[ref] = _CLAIMS[code]
        self._start_renewing()
        return claims

    def _keys(self) -> list[str]:
        return [self.key, f"{self.key}:owners", f"{self.key}:epoch"]

    def _lost(self, found: str) -> StateLostError:
        now = f"holds epoch {found!r}" if found else "has no epoch"
        return StateLostError(
            f"the checkpoint {self.key} vanished from Redis at {redacted(self._url)} (it "
            f"{now}, this run started with {self.epoch!r}): Redis was flushed, restarted "
            "without persistence, or evicted it; nothing more is sent. Resubmit the file "
            "with --lost-state (every row not known done is looked up in EnKash first)",
            url=redacted(self._url),
            operation="claiming intents in the checkpoint",
        )

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record ``refs`` as intended by this store where no one intends them (a done or
        held ref is left as it is)."""
        await self.claim(refs)

    async def mark_done(
        self, ref: str, customer_id: str | None, fingerprint: str | None = None
    ) -> None:
        """Record that EnKash has ``ref`` (as ``customer_id`` when known) as the row whose
        ``fingerprint`` is given (None: unknown), replacing what was recorded. Raises
        ``ValidationError`` for an id or fingerprint the value cannot hold."""
        value = f"{_DONE}:{customer_id or ''}"
        if fingerprint is not None:
            if not _FINGERPRINT.fullmatch(fingerprint):
                raise ValidationError(
                    [FieldError("fingerprint", "must be 1-64 printable characters, no ':'")]
                )
            value += f":{fingerprint}"
        if _DONE_VALUE.fullmatch(value) is None:
            raise ValidationError(
                [FieldError("customer_id", "must be up to 64 letters, digits, '_' or '-'")]
            )
        async with redis_errors(self._url, "recording a completion in the checkpoint"):
            await self._redis.hset(self.key, ref, value)

    async def written(self, refs: Sequence[str]) -> Mapping[str, Written]:
        """What is recorded of each done ref of ``refs`` (one HMGET per 1,000 refs); refs
        not done are absent. Only reads."""
        found: dict[str, Written] = {}
        for start in range(0, len(refs), _READ_CHUNK):
            chunk = list(refs[start : start + _READ_CHUNK])
            async with redis_errors(self._url, "reading the checkpoint"):
                values = await self._redis.hmget(self.key, chunk)
            for ref, value in zip(chunk, values, strict=True):
                if value is not None:
                    written = self._parse(ref, value)
                    if written is not None:
                        found[ref] = written
        return found

    async def iter_written(self) -> AsyncIterator[tuple[str, Written]]:
        """Every done ref of this checkpoint with what is recorded of it (an HSCAN: a ref
        may come twice if Redis resizes the hash meanwhile)."""
        cursor: int = 0
        while True:
            async with redis_errors(self._url, "reading the checkpoint"):
                cursor, items = await self._redis.hscan(self.key, cursor, count=_READ_CHUNK)
            assert isinstance(items, dict)  # HSCAN without NOVALUES: field to value
            for raw_ref, value in items.items():
                ref = text(raw_ref)
                written = self._parse(ref, value)
                if written is not None:
                    yield ref, written
            if not cursor:
                return

    async def customer_ids(self, refs: Sequence[str]) -> Mapping[str, str | None]:
        """The customer id recorded for each done ref of ``refs``."""
        return {ref: written.customer_id for ref, written in (await self.written(refs)).items()}

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                async with redis_errors(self._url, "renewing the intents' lease"):
                    await self._renew(
                        keys=[f"{self.key}:owners"], args=[self.owner, int(self.lease * 1000)]
                    )
            except SyncStoreError as exc:  # two more tries before the lease runs out
                logger.warning("%s; will try again", exc)

    async def aclose(self) -> None:
        """Give up this store's intents (a later run looks them up first); the Redis
        connection belongs to the caller. Never raises: an owner Redis could not forget
        is forgotten when its lease runs out."""
        renewer, self._renewer = self._renewer, None
        if renewer is None:
            return
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            async with redis_errors(self._url, "giving up the checkpoint's intents"):
                await self._redis.zrem(f"{self.key}:owners", self.owner)
        except SyncStoreError as exc:
            logger.warning("%s; its lease runs out by itself", exc)
