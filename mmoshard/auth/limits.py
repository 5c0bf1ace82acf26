"""Abuse limits in the volatile store: per-IP rate limits and per-username lockout with backoff."""

from mmoshard.auth.errors import error, retryAfter


class Limits:
    """
    Fixed-window request counters per IP and action, and failed-login
    counters per username with a lockout that doubles with each further
    failure.  Kept in the volatile store so every auth process shares them.
    """

    def __init__(self, volatile, config):
        self.volatile = volatile
        self.config = config
        self.rates = {
            "login": (config.login_rate, config.login_window),
            "register": (config.register_rate, config.register_window),
        }

    async def _secondsLeft(self, key, default):
        left = await self.volatile.ttl(key)
        if left is None or left < 0:
            return default
        return left

    async def hit(self, action, ip):
        """
        Count one C{action} from C{ip}.

        @raise HTTPError: 429 C{auth.rate_limited} with Retry-After when
            over the limit.
        """
        limit, window = self.rates[action]
        key = f"auth:rate:{action}:{ip}"
        count = await self.volatile.incr(key, 1, ttl=window)
        if count > limit:
            left = await self._secondsLeft(key, window)
            raise error(
                "auth.rate_limited",
                f"over {limit} {action} requests per {window:g}s from this address",
                headers=retryAfter(left),
            )

    async def lockedFor(self, userKey):
        """@return: seconds C{userKey} stays locked out (0: not locked)."""
        left = await self.volatile.ttl(f"auth:lock:{userKey}")
        if left is None:
            return self.config.lockout_max
        return max(0.0, left)

    async def failed(self, userKey):
        """
        Count a failed login for C{userKey}.

        @return: the lockout in seconds it started (0: none yet).
        """
        cfg = self.config
        failKey = f"auth:fail:{userKey}"
        count = await self.volatile.incr(failKey, 1, ttl=cfg.failure_window)
        if count < cfg.lockout_threshold:
            return 0.0
        seconds = min(cfg.lockout_base * 2 ** (count - cfg.lockout_threshold),
                      cfg.lockout_max)
        await self.volatile.set(f"auth:lock:{userKey}", b"1", ttl=seconds)
        # The count outlives the lockout so the next failure doubles it.
        await self.volatile.expire(failKey, max(cfg.failure_window, seconds * 2))
        return seconds

    async def succeeded(self, userKey):
        """A correct password clears the failure count."""
        await self.volatile.delete(f"auth:fail:{userKey}")
