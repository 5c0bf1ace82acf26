"""Moderation: message checks, per-player flood control and the replaceable filter hook."""

import re

import attrs
from twisted.python.reflect import namedAny
from zope.interface import Attribute, Interface, implementer

from mmoshard.chat import errors


class IChatFilter(Interface):
    """
    The one hook every whisper, party, channel message and announcement
    passes through.  A deployment replaces the built-in one with the
    C{[chat] filter} setting (a dotted path to C{factory(config)}) or by
    registering its own C{IChatFilter} in the node registry before the chat
    role starts.
    """

    name = Attribute("str: shown in logs")

    def check(message):
        """
        @param message: a L{FilterInput}.
        @return: the text to deliver (possibly changed), or None to refuse the
            message (the sender gets C{chat.filtered}).  May raise
            L{mmoshard.wire.errors.ProtocolError} to refuse with its own code.
        """


@attrs.frozen
class FilterInput:
    """What the filter sees of one message."""

    kind: str  # whisper, party, channel, announce
    sender_id: int
    sender_name: str
    target: str  # recipient name, party id or channel name
    text: str


@implementer(IChatFilter)
class WordFilter:
    """The built-in filter: masks configured words, drops control characters."""

    name = "words"
    _control = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

    def __init__(self, words=()):
        words = [w for w in words if w]
        self._pattern = (
            re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.I)
            if words
            else None
        )

    def check(self, message):
        text = self._control.sub("", message.text)
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: "*" * len(m.group(0)), text)
        return text


def loadFilter(config):
    """@return: the configured L{IChatFilter}."""
    if config.filter:
        path = config.filter.replace(":", ".")
        factory = namedAny(path)
        return IChatFilter(factory(config))
    return WordFilter(config.banned_words)


class TokenBucket:
    """Flood control: C{rate} messages per second with bursts of C{burst}."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate, burst, now):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now):
        """@return: 0.0 when a message may go, else the seconds to wait."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


def checkText(text, maxLength):
    """
    @return: C{text} stripped.
    @raise ProtocolError: C{chat.bad_request} or C{chat.too_long}.
    """
    if not isinstance(text, str):
        raise errors.error(errors.BAD_REQUEST, "text must be a string")
    text = text.strip()
    if not text:
        raise errors.error(errors.BAD_REQUEST, "text is empty")
    if len(text) > maxLength:
        raise errors.error(
            errors.TOO_LONG, f"text is longer than {maxLength} characters"
        )
    return text


class SpeechGate:
    """
    What every message a character sends passes: mute, flood control,
    length, then the L{IChatFilter}.
    """

    def __init__(self, config, clock, chatFilter):
        self.config = config
        self.clock = clock
        self.chatFilter = chatFilter

    def checkSend(self, user, text):
        """Mute, flood control and length: @return: the stripped text."""
        now = self.clock.seconds()
        if user.mutedUntil is not None:
            if user.mutedUntil > now:
                raise errors.error(
                    errors.MUTED, f"you are muted: {user.muteReason or 'no reason given'}",
                    retry_after=round(user.mutedUntil - now, 3),
                )
            user.mutedUntil = user.muteReason = None
        wait = user.bucket.take(now)
        if wait:
            raise errors.error(
                errors.RATE_LIMITED, "you are sending too fast", retry_after=round(wait, 3)
            )
        return checkText(text, self.config.max_length)

    def filter(self, user, kind, target, text):
        """@return: C{text} as the filter lets it through; @raise ProtocolError: refused."""
        result = self.chatFilter.check(FilterInput(kind, user.cid, user.name, target, text))
        if result is None or not result.strip():
            raise errors.error(errors.FILTERED, "the message was refused by the chat filter")
        return result
