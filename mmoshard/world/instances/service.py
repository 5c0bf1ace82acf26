"""IInstances: create, close, list, admit, locate and re-open instances across world processes, through the volatile store."""

import secrets

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IInstances
from mmoshard.store.errors import StoreError
from mmoshard import instancewire as messages
from mmoshard.world.instances import errors
from mmoshard.world.instances.arena import checkMatch
from mmoshard.world.instances.data import Placement
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.host import ADMIT, LOST, InstanceHost, hostKey, ticketKey
from mmoshard.world.instances.ids import instanceZoneId
from mmoshard.instancewire import Adopt, Close, Create, Reply
from mmoshard.world.instances.store import closeInstance, loadInstance, openInstances

_ENDPOINTS = ("tcp", "websocket")

# What _ask returns when the process answered instance.no_capacity.
FULL = {}


@implementer(IInstances)
class Instances:
    """
    The world role's L{IInstances}, and the requests of other processes
    for this one's L{InstanceHost} (C{host}).

    A create goes to the least-loaded live world process whose directory
    entry offers the template (C{info.instances}) and is not full
    (C{load.instances} below C{info.max_instances}); load is the entry's
    total (players plus instances).  It is this process directly, else a
    L{messages.Create} published to the chosen process's inbox, answered
    by a L{messages.Reply} to the caller's.  A process that is full or gone
    passes the request to the next one.  Every call answers within
    C{instance_timeout} seconds, else fails with C{instance.unavailable}.

    @ivar onEvict: the host's eviction callback (callable(player)), see
        L{InstanceHost.onEvict}.
    """

    log = Logger()

    def __init__(self, world, sql, volatile, directory, clock, nodeId):
        """
        @param world: the L{mmoshard.world.service.WorldService} hosting instances here.
        @param directory: the L{IDirectory} (None: this process alone, nothing remote).
        """
        cfg = world.config
        self.host = InstanceHost(world, sql, volatile, clock, nodeId, cfg.templates, cfg.offered,
                                 cfg.max_instances, cfg.lease_ttl, cfg.lease_refresh)
        self.sql = sql
        self.volatile = volatile
        self.directory = directory
        self.clock = clock
        self.nodeId = nodeId
        self.timeout = cfg.instance_timeout
        self.subscription = None
        self.replies = messages.PendingReplies(clock)
        self._prefix = secrets.token_hex(4)
        self._next = 0

    @property
    def onEvict(self):
        return self.host.onEvict

    @onEvict.setter
    def onEvict(self, callback):
        self.host.onEvict = callback

    # --- lifetime ----------------------------------------------------------------------

    async def start(self):
        """Listen on this process's inbox and publish what it offers in its directory entry."""
        directory = self.directory
        host = self.host
        if directory is not None:
            directory.publish("instances", list(host.offered))
            directory.publish("max_instances", host.maxInstances)
            directory.addLoadSource("instances", lambda: len(host.instances))
        self.subscription = await self.volatile.subscribe(messages.inbox(self.nodeId), self._received)

    async def stop(self):
        """Stop listening, fail the calls waiting for answers, release the host keys."""
        if self.subscription is not None:
            try:
                await self.subscription.unsubscribe()
            except StoreError:
                pass
            self.subscription = None
        self.replies.endAll()
        await self.host.stop()

    def everySecond(self, second):
        """The host's second (closings, host keys), and the players of each hosted instance into the directory."""
        host = self.host
        host.everySecond(second)
        if self.directory is not None:
            self.directory.publish("hosted", {str(i): inst.players() for i, inst in host.instances.items()})

    # --- IInstances ------------------------------------------------------------------------

    def create(self, template, roster, partyId=None, teams=None, matchId=None):
        teams = None if teams is None else [list(t) for t in teams]
        return Deferred.fromCoroutine(self._create(template, list(roster), partyId, teams, matchId))

    async def _create(self, template, roster, partyId, teams, matchId):
        host = self.host
        if host.templates and template not in host.templates:
            raise InstanceError(errors.UNKNOWN_TEMPLATE, f"no template {template!r}")
        spec = host.templates.get(template)
        if spec is not None and spec.arena:
            # Refused here, before any process is asked.
            roster = checkMatch(template, roster, teams, matchId).roster
        deadline = self.clock.seconds() + self.timeout
        entries = await self._candidates(template)
        if not entries:
            raise InstanceError(errors.NO_CAPACITY, f"no world process offers {template!r} "
                                "with room for another instance")
        value, entry = await self._first(
            entries, template, deadline,
            lambda: host.create(template, roster, partyId, teams, matchId),
            lambda: Create(self.nodeId, self._newId(), template, roster, partyId, teams, matchId))
        return self._placement(value, entry)

    async def _first(self, entries, template, deadline, local, request):
        """
        Offer a request to each of C{entries} in turn until one takes it:
        this process by a direct call (C{local()}, a coroutine), another by
        publishing C{request()} to its inbox.  A process that is full or
        does not answer passes it to the next.

        @return: C{(value, entry)} of the first that took it.
        @raise InstanceError: the first other error one answered; else
            C{instance.unavailable} when one did not answer, or
            C{instance.no_capacity} when all were full.
        """
        unanswered = False
        for entry in entries:
            if entry.node_id == self.nodeId:
                try:
                    value = await self._within(Deferred.fromCoroutine(local()), deadline)
                except InstanceError as e:
                    if e.code == errors.NO_CAPACITY:
                        continue
                    raise
            else:
                value = await self._ask(entry.node_id, request(), deadline)
                if value is None:
                    unanswered = True
                if value is None or value is FULL:
                    continue
            return value, entry
        raise self._nobody(template, unanswered)

    @staticmethod
    def _nobody(template, unanswered):
        """@return: the error when no process took a request: unavailable if one did not answer."""
        if unanswered:
            return InstanceError(errors.UNAVAILABLE, "no world process answered in time",
                                 retry_after=5.0)
        return InstanceError(errors.NO_CAPACITY, f"every world process offering {template!r} is full")

    def close(self, instanceId):
        return Deferred.fromCoroutine(self._close(int(instanceId)))

    async def _close(self, iid):
        host = self.host
        deadline = self.clock.seconds() + self.timeout
        if host.hosts(iid):
            await self._within(host.close(iid), deadline)
            return None
        try:
            holder = await self.volatile.get(hostKey(iid))
            if holder is None or holder.decode() == self.nodeId:
                # Nobody hosts it (its process died; or this process, before
                # a restart): nobody is inside either.
                row = await loadInstance(self.sql, iid)
                if row is None:
                    raise InstanceError(errors.CLOSED, f"no instance {iid}")
                await closeInstance(self.sql, iid, self.clock.seconds())
                if holder is not None:
                    await self.volatile.delete(hostKey(iid))
                self.log.info("instance {instance_id} of {template} closed: its host was gone",
                              instance_id=iid, template=row.template)
                return None
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"instance {iid} not closed: {e}", retry_after=5.0)
        value = await self._ask(holder.decode(), Close(self.nodeId, self._newId(), iid), deadline)
        if value is None:
            raise InstanceError(errors.UNAVAILABLE, f"the host of instance {iid} did not answer",
                                retry_after=5.0)
        return None

    def list(self):
        return Deferred.fromCoroutine(self._list())

    async def _list(self):
        """The open instances (SQL), with their players as their hosts publish them."""
        try:
            rows = await openInstances(self.sql)
            entries = await self._entries()
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"instances not listed: {e}", retry_after=5.0)
        players = {}
        for entry in entries:
            for iid, n in (entry.info.get("hosted") or {}).items():
                players[int(iid)] = (entry.node_id, n)
        for iid, instance in self.host.instances.items():
            players[iid] = (self.nodeId, instance.players())
        listing = []
        for row in rows:
            # Not published yet (made less than a heartbeat ago) or its host is gone.
            node, n = players.get(row.id, (row.node_id, 0))
            listing.append({"instance_id": row.id, "template": row.template,
                            "node": node, "players": n, "created_at": row.created_at})
        return listing

    # --- for the entry helper --------------------------------------------------------------

    def admit(self, ticket, characterId):
        """
        Take admission ticket C{ticket} (of a L{Placement}) for character
        C{characterId}: a ticket admits once, its own character only.

        @return: a Deferred firing with the instance id, or failing with
            L{InstanceError} C{instance.bad_ticket} (unknown, used, expired,
            another character's) or C{instance.unavailable}.
        """
        return Deferred.fromCoroutine(self._admit(ticket, int(characterId)))

    async def _admit(self, ticket, characterId):
        try:
            value = await self.volatile.evalScript(ADMIT, [ticketKey(ticket)], [str(characterId)])
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"ticket not checked: {e}", retry_after=5.0)
        if value is None or value == b"!":
            raise InstanceError(errors.BAD_TICKET, "no such ticket for this character")
        return int(value)

    def locate(self, instanceId):
        """
        Where open instance C{instanceId} lives; when its host is gone it
        is adopted (re-created from SQL) by exactly one process, the least
        loaded offering its template.

        @return: a Deferred firing with a L{Placement} without tickets,
            None when the instance is closed, closing or unknown; or failing
            with L{InstanceError} C{instance.no_capacity},
            C{instance.unavailable} (the host died less than a host TTL ago:
            C{retry_after}; or no answer in time).
        """
        return Deferred.fromCoroutine(self._locate(int(instanceId), False))

    def reopen(self, instanceId):
        """
        L{locate}, and a closed instance on which a lockout still runs
        (C{instance_lockouts.reset_at} in the future) is re-opened with the
        same id on the least-loaded process offering its template, by
        exactly one process (as an adoption): its killed bosses stay dead,
        its trash is back, its C{max_duration} counts from now.

        @return: a Deferred firing with a L{Placement} without tickets, None
            when the instance is unknown, or closed with no lockout running
            on it; or failing as L{locate} does (C{instance.unavailable}
            with C{retry_after} while it is still closing).
        """
        return Deferred.fromCoroutine(self._locate(int(instanceId), True))

    async def _locate(self, iid, reopen):
        host = self.host
        local = host.instances.get(iid)
        if local is not None:
            if local.closing is not None:
                if reopen and local.closing != LOST:
                    raise InstanceError(errors.UNAVAILABLE, f"instance {iid} is closing",
                                        retry_after=1.0)
                return None  # closing: it lets nobody in
            entries = await self._entriesOrUnavailable()
            return self._placement(host.value(local), self._entryOf(entries, self.nodeId))
        deadline = self.clock.seconds() + self.timeout
        try:
            row = await loadInstance(self.sql, iid)
            holder = await self.volatile.get(hostKey(iid))
            left = await self.volatile.ttl(hostKey(iid)) if holder is not None else None
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"instance {iid} not located: {e}", retry_after=5.0)
        if row is None or (row.closed_at is not None and not reopen):
            return None
        if row.closed_at is not None and holder is not None:
            # Its host closed the row and has not released the key yet.
            raise InstanceError(errors.UNAVAILABLE, f"instance {iid} is closing", retry_after=1.0)
        spec = host.templates.get(row.template)
        expired = spec is not None and self.clock.seconds() - row.created_at >= spec.max_duration
        if row.closed_at is None and holder is None and expired:
            # Its host died and its time is up: it is not re-created.
            try:
                await closeInstance(self.sql, iid, self.clock.seconds())
            except StoreError as e:
                raise InstanceError(errors.UNAVAILABLE, f"instance {iid} not closed: {e}", retry_after=5.0)
            self.log.info("instance {instance_id} of {template} closed: its host was gone past "
                          "its max_duration", instance_id=iid, template=row.template)
            return None
        zone = instanceZoneId(row.template, iid)
        entries = await self._entriesOrUnavailable()
        if holder is not None and holder.decode() == self.nodeId:
            # Our key, yet not hosted here: this process was killed and
            # restarted under the same node id before the key ran out.
            # Nobody else may adopt it while the key lives, and the
            # directory lists this node: re-create it here at once (adopt
            # takes its own key back), not answer a placement on a node
            # that does not host it (the entry would bounce the client
            # back here until the key expired).
            try:
                value = await self._within(Deferred.fromCoroutine(host.adopt(iid, reopen)),
                                           deadline)
            except InstanceError as e:
                if e.code == errors.CLOSED:
                    return None
                if e.code != errors.NO_CAPACITY:
                    raise
                # No room here.  Not offered here: adopt released the key,
                # and another process adopts it below.  Full: our key holds
                # it until it runs out.
                try:
                    holder = await self.volatile.get(hostKey(iid))
                except StoreError as err:
                    raise InstanceError(errors.UNAVAILABLE, f"instance {iid} not located: {err}",
                                        retry_after=5.0)
                if holder is not None:
                    raise InstanceError(errors.UNAVAILABLE, f"instance {iid} waits for a host "
                                        "with room", retry_after=left if left and left > 0 else 1.0)
            else:
                return self._placement(value, self._entryOf(entries, self.nodeId))
        if holder is not None:
            return self._hosted(iid, row.template, zone, holder.decode(), entries, left)
        candidates = self._offering(entries, row.template)
        if not candidates:
            raise InstanceError(errors.NO_CAPACITY, f"no world process offers {row.template!r} "
                                "with room for another instance")
        try:
            value, entry = await self._first(
                candidates, row.template, deadline, lambda: host.adopt(iid, reopen),
                lambda: Adopt(self.nodeId, self._newId(), iid, reopen))
        except InstanceError as e:
            if e.code == errors.CLOSED:
                return None  # closed meanwhile
            raise
        if value.get("zone") is None:
            # Another process holds its key: it hosts or adopts it.
            return self._hosted(iid, row.template, zone, value["node"], entries, None)
        return self._placement(value, entry)

    def _hosted(self, iid, template, zone, node, entries, left):
        entry = self._entryOf(entries, node)
        if entry is None:
            # Its host died: another adopts it once the key runs out.
            wait = left if left is not None and left > 0 else 1.0
            raise InstanceError(errors.UNAVAILABLE, f"the host of instance {iid} is gone",
                                retry_after=wait)
        return Placement(iid, template, zone, node, self._endpoints(entry), {})

    # --- choosing a process ---------------------------------------------------------------------

    async def _entries(self):
        if self.directory is None:
            return []
        return await self.directory.endpointsFor("world")

    async def _entriesOrUnavailable(self):
        try:
            return await self._entries()
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"the directory is unavailable: {e}",
                                retry_after=5.0)

    async def _candidates(self, template):
        entries = await self._entriesOrUnavailable()
        if self.directory is None:
            # Alone: this process is the only candidate.
            return [_Self(self.nodeId)] if template in self.host.offered else []
        return self._offering(entries, template)

    async def offeredElsewhere(self, template):
        """@return: True when another live world process offers C{template} with room (a drain's adopter)."""
        try:
            entries = await self._candidates(template)
        except InstanceError:
            return False
        return any(e.node_id != self.nodeId for e in entries)

    def _offering(self, entries, template):
        """The live entries offering C{template} with room, least loaded first (endpointsFor's order)."""
        found = []
        for entry in entries:
            info = entry.info
            if template not in (info.get("instances") or ()):
                continue
            if entry.load.get("instances", 0) >= info.get("max_instances", float("inf")):
                continue
            found.append(entry)
        return found

    def _entryOf(self, entries, node):
        for entry in entries:
            if entry.node_id == node:
                return entry
        return _Self(node) if node == self.nodeId else None

    @staticmethod
    def _endpoints(entry):
        return {k: v for k, v in entry.endpoints.items() if k in _ENDPOINTS}

    def _placement(self, value, entry):
        return Placement(instance_id=int(value["instance_id"]), template=value["template"],
                         zone=value["zone"], node=value["node"], endpoints=self._endpoints(entry),
                         tickets={int(c): t for c, t in (value.get("tickets") or {}).items()})

    # --- requests and replies ---------------------------------------------------------------------

    def _within(self, d, deadline):
        """
        @return: a Deferred firing as C{d} does, or failing with
            C{instance.unavailable} at C{deadline}; C{d} itself goes on (a
            half-made instance is never left behind by a cancel).
        """
        out = Deferred()

        def late():
            if not out.called:
                out.errback(InstanceError(errors.UNAVAILABLE, "no answer in time", retry_after=5.0))

        timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()), late)

        def done(result):
            if timer.active():
                timer.cancel()
            if not out.called:
                out.callback(result)
            elif isinstance(result, Failure):
                self.log.failure("instance call failed after its timeout", result)

        d.addBoth(done)
        return out

    def _newId(self):
        self._next += 1
        return f"{self._prefix}.{self._next}"

    async def _ask(self, node, message, deadline):
        """
        Publish C{message} to C{node}'s inbox and wait for its reply until C{deadline}.

        @return: the reply's value; None when nobody listens there or no
            answer came in time; L{FULL} when it answered C{instance.no_capacity}.
        @raise InstanceError: any other error it answered.
        """
        wait = deadline - self.clock.seconds()
        if wait <= 0:
            return None
        d = self.replies.expect(message.id, wait)
        try:
            receivers = await self.volatile.publish(messages.inbox(node), messages.encode(message))
        except StoreError as e:
            self.replies.resolve(message.id, None)
            await d
            raise InstanceError(errors.UNAVAILABLE, f"request not sent: {e}", retry_after=5.0)
        if not receivers:
            self.log.info("instance request to node {node_id}: nobody listens", node_id=node)
            self.replies.resolve(message.id, None)
        reply = await d
        if reply is None:
            return None
        if reply.code is not None:
            if reply.code == errors.NO_CAPACITY:
                return FULL
            raise InstanceError(reply.code, reply.message or reply.code, retry_after=reply.retry_after)
        return reply.value

    def _received(self, channel, payload):
        try:
            message = messages.decode(payload)
        except ValueError as e:
            self.log.warn("undecodable instance message on {channel}: {why}", channel=channel, why=e)
            return
        if type(message) is Reply:
            self.replies.resolve(message.id, message)
            return
        Deferred.fromCoroutine(self._serve(message))

    async def _serve(self, message):
        """Run another process's request here and publish the reply to its inbox."""
        host = self.host
        cls = type(message)
        try:
            if cls is Create:
                value = await host.create(message.template, message.roster, message.partyId,
                                          message.teams, message.matchId)
            elif cls is Adopt:
                value = await host.adopt(message.instanceId, message.reopen)
            elif cls is Close:
                if host.hosts(message.instanceId):
                    await host.close(message.instanceId)
                value = {}
            else:
                raise InstanceError(errors.UNAVAILABLE, f"unexpected {cls.__name__}")
            reply = Reply(message.id, value)
        except InstanceError as e:
            reply = Reply(message.id, None, e.code, e.message, e.retry_after)
        except Exception:
            self.log.failure("instance request {kind} from node {node_id} failed (instance "
                             "{instance_id})", kind=messages.KINDS[cls], node_id=message.replyTo,
                             instance_id=None if cls is Create else message.instanceId)
            reply = Reply(message.id, None, errors.UNAVAILABLE, "the host failed", 5.0)
        try:
            await self.volatile.publish(messages.inbox(message.replyTo), messages.encode(reply))
        except StoreError as e:
            self.log.warn("instance reply to node {node_id} not sent: {why}",
                          node_id=message.replyTo, why=e)


class _Self:
    """This process as a directory entry, when there is no directory."""

    def __init__(self, nodeId):
        self.node_id = nodeId
        self.endpoints = {}
        self.info = {}
        self.load = {}
