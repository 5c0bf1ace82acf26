"""The messages chat processes send each other, and their one encoding (docs/chat.md lists them)."""

from operator import attrgetter

import attrs
import msgpack


@attrs.frozen
class Deliver:
    """Hand event C{type}/C{body} to the receiving process's characters C{to}."""

    to: list  # character ids
    type: str  # the event's message type, e.g. chat.whisper
    body: dict
    kind: str  # the metrics label: whisper, party, friend, presence, ...
    ts: float | None  # when the message was accepted (delivery latency)
    replayable: bool = True  # kept for a link-dead session's resume
    sender: int | None = None  # a whisper's or invite's sender: blocks apply


@attrs.frozen
class ChannelMessage:
    """Hand a channel message to the receiving process's members of C{channel}."""

    channel: str
    type: str
    body: dict
    ts: float | None
    sender: int | None  # members blocking the sender do not get it
    skip: int | None  # the sender itself


@attrs.frozen
class Announce:
    """Hand event C{type}/C{body} to every character of the receiving process."""

    type: str
    body: dict
    ts: float | None


@attrs.frozen
class ZoneChanged:
    """Character C{cid}'s recorded zone changed: move it to that zone's channel."""

    cid: int


@attrs.frozen
class Mute:
    """An operator muted (C{until} a time) or unmuted (C{until} None) character C{cid}."""

    cid: int
    until: float | None
    reason: str | None


@attrs.frozen
class Replaced:
    """Character C{cid} said hello elsewhere: drop its session C{sid} here."""

    cid: int
    sid: str | None


@attrs.frozen
class Request:
    """C{message}, whose receiver answers process C{replyTo} with an L{Ack} of C{id}."""

    replyTo: str
    id: int
    message: object


@attrs.frozen
class Ack:
    """The answer to L{Request} C{id}: whether the receiver delivered its message."""

    id: int
    ok: bool


# One short kind per class: the first element of a message on the wire.
KINDS = {
    Deliver: "d",
    ChannelMessage: "c",
    Announce: "all",
    ZoneChanged: "zone",
    Mute: "mute",
    Replaced: "replaced",
    Request: "req",
    Ack: "ack",
}
_CLASSES = {kind: cls for cls, kind in KINDS.items()}
_FIELDS = {
    cls: attrgetter(*(f.name for f in attrs.fields(cls))) for cls in KINDS
}


def _encodeOne(message):
    cls = type(message)
    if cls is Request:
        return ["req", message.replyTo, message.id, _encodeOne(message.message)]
    fields = _FIELDS[cls](message)
    if type(fields) is not tuple:
        return [KINDS[cls], fields]
    return [KINDS[cls], *fields]


def _decodeOne(item):
    if type(item) is not list or not item:
        raise ValueError("a chat message is a non-empty array")
    cls = _CLASSES.get(item[0])
    if cls is None:
        raise ValueError(f"unknown chat message kind {item[0]!r}")
    try:
        if cls is Request:
            _, replyTo, rid, inner = item
            return Request(replyTo, rid, _decodeOne(inner))
        return cls(*item[1:])
    except TypeError as e:
        raise ValueError(f"malformed chat message {item[0]!r}: {e}") from None


def encode(messages):
    """@return: the bytes published for C{messages}, a list of the classes above."""
    return msgpack.packb([_encodeOne(m) for m in messages], use_bin_type=True)


def decode(payload):
    """
    @return: the list of messages in C{payload}, as L{encode} made it.
    @raise ValueError: C{payload} is not such a list.
    """
    try:
        items = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:
        raise ValueError(f"undecodable chat payload: {e}") from None
    if type(items) is not list:
        raise ValueError("a chat payload is an array of messages")
    return [_decodeOne(item) for item in items]
