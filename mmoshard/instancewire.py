"""Instances across processes, shared by the world role and the core's IInstances client: the requests and replies on `instance:inbox:<node>` and their one encoding, the host and ticket keys, the admit script, Placement (docs/instances.md, "Hosting")."""

from operator import attrgetter

import attrs
import msgpack
from twisted.internet.defer import Deferred

from mmoshard.store.volatile import Script


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


def hostKey(instanceId):
    """@return: the volatile key naming the node that hosts C{instanceId} (value: its node id)."""
    return f"instance:host:{int(instanceId)}"


def ticketKey(ticket):
    """@return: the volatile key of admission ticket C{ticket} (value: "<instance id>:<character id>")."""
    return f"instance:ticket:{ticket}"


def _admit(view, keys, args):
    value = view.get(keys[0])
    if value is None:
        return None
    instanceId, _, characterId = value.partition(b":")
    if characterId != args[0]:
        return b"!"
    view.delete(keys[0])
    return instanceId


# Take a ticket once, for its own character only: its instance id; "!" for
# another character's (left in place); nil when absent or expired.
ADMIT = Script(
    name="instance_admit",
    lua=(
        "local v = redis.call('GET', KEYS[1]) "
        "if not v then return false end "
        "local i = string.find(v, ':', 1, true) "
        "if string.sub(v, i + 1) ~= ARGV[1] then return '!' end "
        "redis.call('DEL', KEYS[1]) "
        "return string.sub(v, 1, i - 1)"
    ),
    python=_admit,
)


@attrs.frozen
class Placement:
    """
    Where an instance lives, as L{IInstances.create} answers: its id, zone
    id, the node hosting it and that node's client endpoints ({tcp,
    websocket}), and one admission ticket per character of the roster
    (character id -> ticket) for C{world.instance.enter {ticket}}.
    """

    instance_id: int
    template: str
    zone: str
    node: str
    endpoints: dict
    tickets: dict


def _txn_instanceRow(cursor, instanceId):
    return cursor.execute("SELECT template, closed_at FROM instances WHERE id = ?",
                          (instanceId,)).fetchone()


async def loadInstanceRow(sql, instanceId):
    """@return: C{InstanceState} (template, closed_at) of instance C{instanceId} in SQL, or None."""
    r = await sql.runInteraction(_txn_instanceRow, int(instanceId))
    return None if r is None else InstanceState(r[0], None if r[1] is None else float(r[1]))


def _txn_openRows(cursor):
    return cursor.execute("SELECT id, template, node_id, created_at FROM instances "
                          "WHERE closed_at IS NULL ORDER BY id").fetchall()


async def openInstanceRows(sql):
    """@return: C{(id, template, node id, created_at)} of every open instance in SQL, by id."""
    rows = await sql.runInteraction(_txn_openRows)
    return [(int(r[0]), r[1], r[2], float(r[3])) for r in rows]


@attrs.frozen
class InstanceState:
    """What a process without the world role reads of an instance's SQL row."""

    template: str
    closed_at: float | None


class PendingReplies:
    """
    The requests a node waits on for a L{Reply}, by request id: each one's
    Deferred fires with its reply (L{resolve}), or with None when its wait
    runs out or the node stops waiting for all (L{endAll}).
    """

    def __init__(self, clock):
        self.clock = clock
        self._pending = {}  # request id -> (Deferred, timer)

    def expect(self, rid, wait):
        """@return: a Deferred firing with the reply to request C{rid}, or None after C{wait} s."""
        d = Deferred()
        timer = self.clock.callLater(wait, self.resolve, rid, None)
        self._pending[rid] = (d, timer)
        return d

    def resolve(self, rid, reply):
        """Answer request C{rid} with C{reply} (None: no answer); an unknown or answered id is ignored."""
        entry = self._pending.pop(rid, None)
        if entry is None:
            return
        d, timer = entry
        if timer.active():
            timer.cancel()
        d.callback(reply)

    def endAll(self):
        """Answer every request still waiting with None."""
        for rid in list(self._pending):
            self.resolve(rid, None)
