"""The messages world processes send each other about instances, and their one encoding (docs/instances.md, "Hosting")."""

from operator import attrgetter

import attrs
import msgpack


def inbox(nodeId):
    """@return: the volatile channel process C{nodeId} receives instance messages on."""
    return f"instance:inbox:{nodeId}"


@attrs.frozen
class Create:
    """
    Make a new instance of C{template} for the characters C{roster} (of
    party C{partyId}) here; a matchmade one has its C{matchId} and, an
    arena, its C{teams} (lists of character ids).
    """

    replyTo: str  # the caller's node id: the Reply goes to its inbox
    id: str  # the request id the Reply carries back
    template: str
    roster: list  # character ids
    partyId: str | None
    teams: list | None = None
    matchId: str | None = None


@attrs.frozen
class Adopt:
    """
    Host open instance C{instanceId}, whose host is gone, here: re-create
    it from SQL; with C{reopen}, also a closed one on which a lockout runs.
    """

    replyTo: str
    id: str
    instanceId: int
    reopen: bool = False


@attrs.frozen
class Close:
    """Close instance C{instanceId}, hosted here, sending everyone inside out first."""

    replyTo: str
    id: str
    instanceId: int


@attrs.frozen
class Reply:
    """
    The answer to request C{id}: C{value} (a dict: {instance_id, template,
    zone, node, tickets} for Create and Adopt, {} for Close) or, when
    C{code} is set, the L{InstanceError} C{code}/C{message}.
    """

    id: str
    value: dict | None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None


# One short kind per class: the first element of a message on the wire.
KINDS = {Create: "create", Adopt: "adopt", Close: "close", Reply: "reply"}
_CLASSES = {kind: cls for cls, kind in KINDS.items()}
_FIELDS = {cls: attrgetter(*(f.name for f in attrs.fields(cls))) for cls in KINDS}


def encode(message):
    """@return: the bytes published for C{message}, one of the classes above."""
    cls = type(message)
    return msgpack.packb([KINDS[cls], *_FIELDS[cls](message)], use_bin_type=True)


def decode(payload):
    """
    @return: the message in C{payload}, as L{encode} made it.
    @raise ValueError: C{payload} is not such a message.
    """
    try:
        item = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as e:
        raise ValueError(f"undecodable instance message: {e}") from None
    if type(item) is not list or not item:
        raise ValueError("an instance message is a non-empty array")
    cls = _CLASSES.get(item[0])
    if cls is None:
        raise ValueError(f"unknown instance message kind {item[0]!r}")
    try:
        return cls(*item[1:])
    except TypeError as e:
        raise ValueError(f"malformed instance message {item[0]!r}: {e}") from None
