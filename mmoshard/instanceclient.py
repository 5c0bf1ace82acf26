"""IInstances for a process without the world role: the world's cross-process instance requests over the volatile store, SQL and the directory."""

import secrets

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard import instanceerrors as errors
from mmoshard import instancewire as wire
from mmoshard.instanceerrors import InstanceError
from mmoshard.instancewire import (
    ADMIT, Adopt, Close, Create, Placement, Reply, hostKey, loadInstanceRow, openInstanceRows,
    ticketKey,
)
from mmoshard.interfaces import IInstances
from mmoshard.store.errors import StoreError

_ENDPOINTS = ("tcp", "websocket")

# Seconds a call waits for the world processes (the world's instance_timeout default).
TIMEOUT = 5.0


def _retry(message):
    return InstanceError(errors.UNAVAILABLE, message, retry_after=5.0)


@implementer(IInstances)
class StoreInstances:
    """
    L{IInstances} in a process without the world role (a matchmaking-only
    node): every request goes to a world process, as the world's own
    L{IInstances} sends it to another world process — a L{Create},
    L{Adopt} or L{Close} published on that process's inbox
    (L{wire.inbox}), answered by a L{Reply} on this node's inbox.  A create
    goes to the least-loaded live world process whose directory entry
    offers the template with room; one that is full or silent passes it
    on.  C{list} reads SQL and the directory; C{admit} takes the ticket in
    the store.  Every call answers within C{timeout} seconds, else fails
    with C{instance.unavailable}.
    """

    log = Logger()

    def __init__(self, sql, volatile, directory, clock, nodeId, timeout=TIMEOUT):
        self.sql = sql
        self.volatile = volatile
        self.directory = directory
        self.clock = clock
        self.nodeId = nodeId
        self.timeout = timeout
        self.subscription = None
        self.replies = wire.PendingReplies(clock)
        self._prefix = secrets.token_hex(4)
        self._next = 0

    async def start(self):
        """Listen for replies on this node's instance inbox."""
        self.subscription = await self.volatile.subscribe(wire.inbox(self.nodeId), self._received)

    async def stop(self):
        """Stop listening; calls still waiting fail with C{instance.unavailable}."""
        if self.subscription is not None:
            try:
                await self.subscription.unsubscribe()
            except StoreError:
                pass
            self.subscription = None
        self.replies.endAll()

    # --- IInstances ------------------------------------------------------------------

    def create(self, template, roster, partyId=None, teams=None, matchId=None):
        teams = None if teams is None else [list(t) for t in teams]
        return Deferred.fromCoroutine(self._create(template, list(roster), partyId, teams, matchId))

    async def _create(self, template, roster, partyId, teams, matchId):
        deadline = self.clock.seconds() + self.timeout
        entries = self._offering(await self._entries(), template)
        if not entries:
            raise InstanceError(errors.NO_CAPACITY, f"no world process offers {template!r} "
                                "with room for another instance")
        value, entry = await self._first(
            entries, template, deadline,
            lambda: Create(self.nodeId, self._newId(), template, roster, partyId, teams, matchId))
        return self._placement(value, entry)

    def close(self, instanceId):
        return Deferred.fromCoroutine(self._close(int(instanceId)))

    async def _close(self, iid):
        deadline = self.clock.seconds() + self.timeout
        try:
            holder = await self.volatile.get(hostKey(iid))
        except StoreError as e:
            raise _retry(f"instance {iid} not closed: {e}")
        if holder is None:
            # Nobody hosts it: its host died (an open row is adopted, and
            # closed, by a world process) or it is closed already.
            row = await self._row(iid)
            if row is None or row.closed_at is not None:
                if row is None:
                    raise InstanceError(errors.CLOSED, f"no instance {iid}")
                return None
            entries = self._offering(await self._entries(), row.template)
            if not entries:
                raise InstanceError(errors.NO_CAPACITY, f"no world process offers {row.template!r}")
            holder = entries[0].node_id.encode()
        value = await self._ask(holder.decode(), Close(self.nodeId, self._newId(), iid), deadline)
        if value is None:
            raise _retry(f"the host of instance {iid} did not answer")
        return None

    def list(self):
        return Deferred.fromCoroutine(self._list())

    async def _list(self):
        try:
            rows = await openInstanceRows(self.sql)
        except StoreError as e:
            raise _retry(f"instances not listed: {e}")
        players = {}
        for entry in await self._entries():
            for iid, n in (entry.info.get("hosted") or {}).items():
                players[int(iid)] = (entry.node_id, n)
        listing = []
        for iid, template, node, createdAt in rows:
            node, n = players.get(iid, (node, 0))
            listing.append({"instance_id": iid, "template": template, "node": node,
                            "players": n, "created_at": createdAt})
        return listing

    def locate(self, instanceId):
        return Deferred.fromCoroutine(self._locate(int(instanceId), False))

    def reopen(self, instanceId):
        return Deferred.fromCoroutine(self._locate(int(instanceId), True))

    async def _locate(self, iid, reopen):
        deadline = self.clock.seconds() + self.timeout
        try:
            holder = await self.volatile.get(hostKey(iid))
        except StoreError as e:
            raise _retry(f"instance {iid} not located: {e}")
        entries = await self._entries()
        if holder is not None:
            # Hosted: ask its host, which answers as the world's own locate.
            node = holder.decode()
            if not any(e.node_id == node for e in entries):
                raise InstanceError(errors.UNAVAILABLE, f"the host of instance {iid} is gone",
                                    retry_after=1.0)
            candidates = [e for e in entries if e.node_id == node]
        else:
            row = await self._row(iid)
            if row is None or (row.closed_at is not None and not reopen):
                return None
            candidates = self._offering(entries, row.template)
            if not candidates:
                raise InstanceError(errors.NO_CAPACITY, f"no world process offers {row.template!r} "
                                    "with room for another instance")
        try:
            value, entry = await self._first(candidates, "", deadline,
                                             lambda: Adopt(self.nodeId, self._newId(), iid, reopen))
        except InstanceError as e:
            if e.code == errors.CLOSED:
                return None
            raise
        if value.get("zone") is None:
            # Another process holds its key: it hosts or adopts it.
            hosts = [e for e in entries if e.node_id == value["node"]]
            if not hosts:
                raise InstanceError(errors.UNAVAILABLE, f"the host of instance {iid} is gone",
                                    retry_after=1.0)
            return Placement(iid, value.get("template") or "", "", value["node"],
                             self._endpoints(hosts[0]), {})
        placement = self._placement(value, entry)
        return Placement(placement.instance_id, placement.template, placement.zone,
                         placement.node, placement.endpoints, {})

    def admit(self, ticket, characterId):
        return Deferred.fromCoroutine(self._admit(ticket, int(characterId)))

    async def _admit(self, ticket, characterId):
        try:
            value = await self.volatile.evalScript(ADMIT, [ticketKey(ticket)], [str(characterId)])
        except StoreError as e:
            raise _retry(f"ticket not checked: {e}")
        if value is None or value == b"!":
            raise InstanceError(errors.BAD_TICKET, "no such ticket for this character")
        return int(value)

    # --- world processes -----------------------------------------------------------------

    async def _entries(self):
        if self.directory is None:
            return []
        try:
            return await self.directory.endpointsFor("world")
        except StoreError as e:
            raise _retry(f"the directory is unavailable: {e}")

    async def _row(self, iid):
        try:
            return await loadInstanceRow(self.sql, iid)
        except StoreError as e:
            raise _retry(f"instance {iid} not read: {e}")

    @staticmethod
    def _offering(entries, template):
        """The live entries offering C{template} with room, least loaded first."""
        return [e for e in entries if template in (e.info.get("instances") or ())
                and e.load.get("instances", 0) < e.info.get("max_instances", float("inf"))]

    @staticmethod
    def _endpoints(entry):
        return {k: v for k, v in entry.endpoints.items() if k in _ENDPOINTS}

    def _placement(self, value, entry):
        return Placement(instance_id=int(value["instance_id"]), template=value["template"],
                         zone=value["zone"], node=value["node"], endpoints=self._endpoints(entry),
                         tickets={int(c): t for c, t in (value.get("tickets") or {}).items()})

    async def _first(self, entries, template, deadline, request):
        """
        Offer C{request()} to each of C{entries} in turn until one takes it.

        @return: C{(value, entry)} of the first that took it.
        @raise InstanceError: the first other error answered; else
            C{instance.unavailable} when one was silent, C{instance.no_capacity}
            when all were full.
        """
        unanswered = False
        for entry in entries:
            reply = await self._ask(entry.node_id, request(), deadline)
            if reply is None:
                unanswered = True
                continue
            if reply.code == errors.NO_CAPACITY:
                continue
            if reply.code is not None:
                raise InstanceError(reply.code, reply.message or reply.code,
                                    retry_after=reply.retry_after)
            return reply.value, entry
        if unanswered:
            raise _retry("no world process answered in time")
        raise InstanceError(errors.NO_CAPACITY, f"every world process offering {template!r} is full")

    def _newId(self):
        self._next += 1
        return f"{self._prefix}.{self._next}"

    async def _ask(self, node, message, deadline):
        """@return: the L{Reply} of C{node} to C{message}, or None when none came by C{deadline}."""
        wait = deadline - self.clock.seconds()
        if wait <= 0:
            return None
        d = self.replies.expect(message.id, wait)
        try:
            receivers = await self.volatile.publish(wire.inbox(node), wire.encode(message))
        except StoreError as e:
            self.log.warn("instance request to node {node_id} not sent: {why}", node_id=node, why=e)
            receivers = 0
        if not receivers:
            self.log.info("instance request to node {node_id}: nobody listens", node_id=node)
            self.replies.resolve(message.id, None)
        return await d

    def _received(self, channel, payload):
        try:
            message = wire.decode(payload)
        except ValueError as e:
            self.log.warn("undecodable instance message on {channel}: {why}", channel=channel, why=e)
            return
        if type(message) is Reply:
            self.replies.resolve(message.id, message)
        else:
            # Requests go to world processes; this node hosts nothing.
            self.log.warn("instance request {kind} from node {node_id} to a node without "
                          "the world role: ignored", kind=wire.KINDS[type(message)],
                          node_id=message.replyTo)
