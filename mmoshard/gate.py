"""The client gate: build minimums and maintenance windows read from the volatile store, asked at every session handshake."""

import json
import re

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IClientGate

# Where the version role (or `mmoshard release publish`) writes the rules,
# and the channel it announces a change on; both under the store prefix.
RULES_KEY = "gate:rules"
RULES_CHANNEL = "gate:changed"

DEFAULT_CHANNEL = "live"

# The error codes a refused handshake carries (docs/protocol.md).
UPDATE_REQUIRED = "version.update_required"
MAINTENANCE = "server.maintenance"
MAX_BUILD_LENGTH = 64

_BUILD = re.compile(
    r"^(?P<nums>\d{1,9}(?:\.\d{1,9}){0,4})"
    r"(?:-(?P<pre>[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*))?"
    r"(?:\+[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?"
)


class MalformedBuild(ValueError):
    """A build string that is not a version such as 1.10.0 or 2.0.0-rc.1."""


def _preKey(pre):
    # Semantic-versioning precedence: numeric identifiers sort numerically
    # and below alphanumeric ones; a release sorts above its pre-releases.
    if pre is None:
        return (1,)
    ids = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    )
    return (0, ids)


@attrs.frozen(order=True)
class Build:
    """
    A build version that compares as a version: 1.10.0 > 1.9.9, 1.2 == 1.2.0,
    2.0.0-rc.1 < 2.0.0.  C{text} is the string as written (not compared).
    """

    key: tuple
    text: str = attrs.field(eq=False, order=False)

    def __str__(self):
        return self.text


def parseBuild(text):
    """
    @return: the L{Build} written as C{text}.
    @raise MalformedBuild: when C{text} is not a version string.
    """
    if not isinstance(text, str) or len(text) > MAX_BUILD_LENGTH:
        raise MalformedBuild(f"not a build version: {text!r}")
    match = _BUILD.fullmatch(text)
    if match is None:
        raise MalformedBuild(f"not a build version: {text!r}")
    nums = [int(n) for n in match["nums"].split(".")]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return Build((tuple(nums), _preKey(match["pre"])), text)


def splitClientVersion(clientVersion, defaultChannel=DEFAULT_CHANNEL):
    """
    Split the version a client sends at the handshake, C{"1.10.0"} or
    C{"ptr/1.10.0"}, into C{(channel, build text)}.
    """
    channel, sep, build = (clientVersion or "").rpartition("/")
    return (channel if sep and channel else defaultChannel), build


@attrs.frozen
class GateRefusal:
    """Why a client may not open a session now: a typed error and a hint when to retry."""

    code: str
    message: str
    retry_after: int | None = None

    def toBody(self):
        """@return: the protocol's error body C{{code, message, retry_after?}}."""
        body = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


@attrs.frozen
class Maintenance:
    """A maintenance window [start, end) in Unix seconds with the message players see."""

    start: float
    end: float
    message: str

    def activeAt(self, now):
        return self.start <= now < self.end

    def retryAfter(self, now):
        """@return: whole seconds until the window ends (at least 1)."""
        return max(1, int(self.end - now + 0.999))

    def toJSON(self):
        return {"start": self.start, "end": self.end, "message": self.message}

    @classmethod
    def fromJSON(cls, data):
        return cls(float(data["start"]), float(data["end"]), str(data["message"]))


@attrs.frozen
class GateRules:
    """
    What the gate enforces: the minimum build per C{"platform/channel"} and
    its maintenance windows; C{revision} identifies the publication.
    """

    revision: int = 0
    minimum: dict = attrs.field(factory=dict)  # "platform/channel" -> Build
    maintenance: tuple = ()  # of Maintenance, by start

    def toJSON(self):
        return {
            "revision": self.revision,
            "minimum": {k: v.text for k, v in sorted(self.minimum.items())},
            "maintenance": [m.toJSON() for m in self.maintenance],
        }

    def encode(self):
        return json.dumps(self.toJSON(), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw):
        data = json.loads(raw)
        return cls(
            revision=int(data.get("revision", 0)),
            minimum={k: parseBuild(v) for k, v in data.get("minimum", {}).items()},
            maintenance=tuple(
                Maintenance.fromJSON(m) for m in data.get("maintenance") or ()
            ),
        )

    def activeMaintenance(self, now):
        """@return: the L{Maintenance} window open at C{now}, or None."""
        for m in self.maintenance:
            if m.activeAt(now):
                return m
        return None

    def decide(self, claims, clientVersion, platform, now, defaultChannel=DEFAULT_CHANNEL):
        """@return: None to let the client in, else a L{GateRefusal}."""
        m = self.activeMaintenance(now) if self.maintenance else None
        if m is not None and not isOperator(claims):
            return GateRefusal(MAINTENANCE, m.message, m.retryAfter(now))
        channel, text = splitClientVersion(clientVersion, defaultChannel)
        minimum = self.minimum.get(f"{platform}/{channel}")
        if minimum is None:
            return None
        try:
            build = parseBuild(text)
        except MalformedBuild:
            return GateRefusal(
                UPDATE_REQUIRED,
                f"unrecognised client version {clientVersion!r}; "
                f"update to {minimum.text} or later",
            )
        if build < minimum:
            return GateRefusal(
                UPDATE_REQUIRED,
                f"build {build.text} is no longer supported on {platform}/{channel}; "
                f"update to {minimum.text} or later",
            )
        return None


def isOperator(claims):
    """@return: True when C{claims} carry the operator flag."""
    flags = getattr(claims, "flags", None) or ()
    return "operator" in flags


@implementer(IClientGate)
class StoreGate:
    """
    An L{IClientGate} over the rules published in the volatile store.

    The rules are held in memory, so a handshake costs no store round trip;
    they are re-read when a change is announced on L{RULES_CHANNEL} and every
    C{refresh} seconds in case an announcement was missed.  Until rules are
    read (or when none are published, or the store is down at start) every
    client is let in: the gate never locks players out on its own failure.

    Call C{start()} once the store is connected and C{stop()} before it
    closes; both return Deferreds.
    """

    log = Logger()

    def __init__(self, volatile, clock, refresh=5.0, defaultChannel=DEFAULT_CHANNEL):
        self.volatile = volatile
        self.clock = clock
        self.refreshInterval = refresh
        self.defaultChannel = defaultChannel
        self.rules = GateRules()
        self._loop = None
        self._subscription = None
        self._failing = False

    def check(self, claims, clientVersion, platform):
        return succeed(
            self.rules.decide(
                claims, clientVersion, platform, self.clock.seconds(), self.defaultChannel
            )
        )

    async def refresh(self):
        """Re-read the rules now; store failures are logged and the old rules kept."""
        try:
            raw = await self.volatile.get(RULES_KEY)
            rules = GateRules.decode(raw) if raw else GateRules()
        except Exception as e:
            if not self._failing:
                self.log.warn("client gate cannot read its rules: {why}", why=e)
            self._failing = True
            return self.rules
        if self._failing:
            self.log.info("client gate reads its rules again")
        self._failing = False
        if rules != self.rules:
            self.log.info(
                "client gate rules revision {revision}: maintenance {maintenance}",
                revision=rules.revision,
                maintenance=rules.maintenance,
            )
        self.rules = rules
        return rules

    def _announced(self, channel, message):
        Deferred.fromCoroutine(self.refresh())

    def start(self):
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        try:
            self._subscription = await self.volatile.subscribe(
                RULES_CHANNEL, self._announced
            )
        except Exception as e:
            self.log.warn("client gate cannot subscribe to changes: {why}", why=e)
        self._loop = LoopingCall(lambda: Deferred.fromCoroutine(self.refresh()))
        self._loop.clock = self.clock
        self._loop.start(self.refreshInterval, now=False)
        await self.refresh()

    def stop(self):
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            try:
                await subscription.unsubscribe()
            except Exception:
                pass


async def publishRules(volatile, rules):
    """Write C{rules} (L{GateRules}) for every gate and announce the change."""
    await volatile.set(RULES_KEY, rules.encode())
    await volatile.publish(RULES_CHANNEL, str(rules.revision).encode())
