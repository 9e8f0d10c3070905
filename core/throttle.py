"""Shared throttles in Redis for calls to an outside system: token bucket, lease semaphore, breaker.

All three live in Redis so every worker process on every host sees one allowance. If Redis
loses them (restart, flush), they start afresh: at worst one burst, never a stuck queue.
"""

from __future__ import annotations

import time
import uuid

from redis import Redis

# KEYS[1] bucket hash; ARGV rate, burst, now → seconds to wait (0 = token taken)
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't'))
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts'))
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""

# KEYS[1] zset of holders; ARGV now, lease, cap, member → 1 acquired, 0 full
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
return 1
"""

# KEYS[1] breaker hash, KEYS[2] probe key; ARGV now, cooldown → 1 allowed, 0 open
_ALLOW = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
if tonumber(ARGV[1]) < open_until then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', math.ceil(tonumber(ARGV[2]) * 1000)) then return 1 end
return 0
"""

# KEYS[1] breaker hash, KEYS[2] probe; ARGV now, threshold, cooldown → 1 if it opened now
_FAIL = """
local now = tonumber(ARGV[1])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], 86400)
if (open_until > 0 and now >= open_until) or (open_until == 0 and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + tonumber(ARGV[3])), 'failures', 0)
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    def __init__(self, redis: Redis, key: str, rate: float, burst: int) -> None:
        self.redis, self.key, self.rate, self.burst = redis, key, rate, max(1, burst)
        self._script = redis.register_script(_BUCKET)

    def take(self) -> float:
        """Take a token if there is one: returns 0.0, or the seconds until the next one."""
        return float(self._script(keys=[self.key], args=[self.rate, self.burst, time.time()]))


class LeaseSemaphore:
    """At most `cap` holders at once; a holder that dies frees its place when the lease ends."""

    def __init__(self, redis: Redis, key: str, cap: int, lease: float) -> None:
        self.redis, self.key, self.cap, self.lease = redis, key, max(1, cap), lease
        self._script = redis.register_script(_ACQUIRE)

    def acquire(self) -> str | None:
        token = uuid.uuid4().hex
        got = self._script(keys=[self.key], args=[time.time(), self.lease, self.cap, token])
        return token if int(got) == 1 else None

    def release(self, token: str) -> None:
        self.redis.zrem(self.key, token)

    def holders(self) -> int:
        return int(self.redis.zcount(self.key, time.time(), "+inf"))


class CircuitBreaker:
    """Opens after `threshold` failures in a row, stays open `cooldown` seconds, then lets one
    probe through (half-open): its success closes the breaker, its failure opens it again."""

    def __init__(self, redis: Redis, key: str, threshold: int, cooldown: float) -> None:
        self.redis, self.key, self.threshold, self.cooldown = redis, key, max(1, threshold), cooldown
        self.probe_key = key + ":probe"
        self._allow = redis.register_script(_ALLOW)
        self._fail = redis.register_script(_FAIL)

    def allow(self) -> bool:
        return int(self._allow(keys=[self.key, self.probe_key], args=[time.time(), self.cooldown])) == 1

    def success(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key, mapping={"failures": 0, "open_until": 0})
        pipe.delete(self.probe_key)
        pipe.execute()

    def failure(self) -> bool:
        """Record a failure; True when this failure opened the breaker."""
        args = [time.time(), self.threshold, self.cooldown]
        return int(self._fail(keys=[self.key, self.probe_key], args=args)) == 1

    def state(self) -> dict[str, object]:
        raw = self.redis.hgetall(self.key)
        decoded = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        open_until = float(decoded.get("open_until") or 0)
        now = time.time()
        state = "closed" if open_until == 0 else ("open" if now < open_until else "half_open")
        return {
            "state": state,
            "failures": int(decoded.get("failures") or 0),
            "opened": int(decoded.get("opened") or 0),
            "open_for_seconds": round(max(0.0, open_until - now), 1) if state == "open" else 0.0,
        }
