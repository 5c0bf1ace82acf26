"""Parties in the volatile store: invites, membership, leader hand-over, party chat and IParties."""

import json
import secrets

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.chat import errors
from mmoshard.chat.history import History
from mmoshard.chat.messages import Deliver
from mmoshard.chat.metrics import ChatMetrics
from mmoshard.chat.moderation import SpeechGate
from mmoshard.chat.routing import ChatPart
from mmoshard.chat.users import publicPresence
from mmoshard.interfaces import IParties
from mmoshard.partychanges import PartyChanged, publishChange
from mmoshard.partystore import readParties
from mmoshard.store.errors import StoreError

_MAX_TRIES = 20


def _dump(party):
    return json.dumps(party, separators=(",", ":"), sort_keys=True)


@attrs.frozen
class Plan:
    """A party change: the new party (None: disbanded) and the other keys it writes."""

    party: dict | None
    changes: tuple = ()  # (key, expected, new) as for ChatStore.cas
    event: str = ""
    subject: int | None = None
    notify: tuple = ()  # extra characters told (e.g. the one who left)


def memberIds(party):
    return [m[0] for m in party["members"]] if party else []


@implementer(IParties)
@attrs.define(eq=False, kw_only=True)
class Parties(ChatPart):
    """
    A party is one JSON value at C{chat:party:{<id>}} (leader first among its
    members) and one C{chat:pof:<cid>} key per member; every change is one
    compare-and-set over those keys, retried on conflict, so two processes
    never lose each other's updates.  On a Redis Cluster, where the
    members' keys lie in other slots, a change claims the new members'
    keys first, then sets the party (with its invites, in its slot), then
    clears the leavers' keys (L{_casApart}).  Members stay in their party while
    offline; the lead passes to an online member when the leader leaves,
    is kicked out by going offline, or stays link-dead past the grace.
    """

    log = Logger()

    gate: SpeechGate
    history: History
    metrics: ChatMetrics
    clock: IReactorTime
    leaderGrace: float  # seconds a link-dead leader keeps the lead
    # party id -> (party, {member: process}) for party chat across
    # processes; dropped on every party change, on a presence change of
    # a member, and when a process it names turns out to be gone.
    routes: dict = attrs.field(init=False, factory=dict)

    def handlers(self):
        return {
            "chat.party.create": self.create,
            "chat.party.invite": self.invite,
            "chat.party.accept": self.accept,
            "chat.party.decline": self.decline,
            "chat.party.leave": self.leave,
            "chat.party.kick": self.kick,
            "chat.party.promote": self.promote,
            "chat.party.say": self.say,
            "chat.party.info": self.info,
        }

    def intercepts(self):
        """@return: the events that change a local member's view of its party."""
        return {"chat.party.update": self._updated, "chat.presence": self._presenceSeen}

    # -- IParties --------------------------------------------------------------

    def partyOf(self, characterId):
        return Deferred.fromCoroutine(self.store.partyOf(characterId))

    def members(self, partyId):
        async def get():
            _, party = await self.read(partyId)
            return memberIds(party)

        return Deferred.fromCoroutine(get())

    def partiesOf(self, characterIds):
        return Deferred.fromCoroutine(readParties(self.store.volatile, characterIds))

    # -- state ---------------------------------------------------------------------

    def read(self, pid):
        """@return: (raw JSON, party dict), or ("", None)."""
        return self.store.readParty(pid)

    async def load(self, user):
        """At hello: pick up the party the character is in, if any."""
        pid = await self.partyOf(user.cid)
        if pid is None:
            return
        _, party = await self.read(pid)
        if party is not None and user.cid in memberIds(party):
            user.partyId, user.party = pid, party
            await self.checkLeader(party, None)

    async def checkLeader(self, party, procs):
        """
        Pass the lead on when the leader has no presence entry at all: its
        process died (no timer of its own will ever run) and its entry
        expired.  C{procs}: member -> process, when already known.
        """
        leader = party["leader"]
        if procs is None:
            procs = await self.store.presenceOf([leader])
        if leader not in procs and leader not in self.roster.users:
            await self.handOver(party["id"], leader)

    def _presenceSeen(self, user, body):
        if user.partyId and user.party:
            cid = body.get("character_id")
            if any(m[0] == cid for m in user.party["members"]):
                self.routes.pop(user.partyId, None)

    def _updated(self, user, body):
        self.routes.pop(body.get("party_id"), None)
        party = body.get("party")
        if party is not None and user.cid in memberIds(party):
            user.partyId, user.party = party["id"], party
        elif user.partyId == body.get("party_id"):
            user.partyId = user.party = None

    async def change(self, pid, planner):
        """
        Apply C{planner(party) -> Plan} (which may raise a ProtocolError)
        atomically, re-reading and re-planning on conflict, then tell every
        member old and new.  @return: the applied L{Plan}.
        """
        store = self.store
        for _ in range(_MAX_TRIES):
            raw, party = await self.read(pid)
            plan = planner(party)
            new = _dump(plan.party) if plan.party is not None else ""
            changes = [(store.partyKey(pid), raw, new)] + list(plan.changes)
            if store.together([c[0] for c in changes]):
                done = await store.cas(changes, self.config.party_ttl)
            else:
                done = await self._casApart(pid, changes, self.config.party_ttl)
            if done:
                await self._publish(pid, party, plan)
                await self._announce(pid, party, plan)
                return plan
        raise errors.error(errors.BUSY, "the party is changing too fast, try again")

    async def _casApart(self, pid, changes, ttl):
        """
        C{changes} on a Redis Cluster: each member pointer a change sets is
        claimed first (one compare-and-set each: a character joins one party
        at a time), then the party and the keys of its slot change in one;
        the pointers it clears go last (only if they still name this party).
        A failed step undoes the claims.  Between the steps a pointer may
        name a party that does not (yet, or any longer) list its member:
        readers check membership (L{load}).  @return: True when applied.
        """
        store = self.store
        key = store.partyKey(pid)
        local = [c for c in changes if store.together([key, c[0]])]
        apart = [c for c in changes if not store.together([key, c[0]])]
        claimed = []
        for change in (c for c in apart if c[2] != ""):
            if not await store.cas([change], ttl):
                break
            claimed.append(change)
        else:
            if await store.cas(local, ttl):
                for k, want, _ in (c for c in apart if c[2] == ""):
                    await store.cas([(k, pid if want == "*" else want, "")], ttl)
                return True
        for k, want, new in claimed:
            await store.cas([(k, new, want)], ttl)
        return False

    async def _announce(self, pid, old, plan):
        members = set(memberIds(plan.party))
        gone = (set(memberIds(old)) | set(plan.notify)) - members
        body = {
            "party_id": pid,
            "party": plan.party,
            "event": plan.event,
            "character_id": plan.subject,
        }
        await self.router.deliver(sorted(members), "chat.party.update", body, "party_event")
        if gone:
            await self.router.deliver(
                sorted(gone), "chat.party.update", dict(body, party=None), "party_event"
            )

    async def _publish(self, pid, old, plan):
        """Tell other roles (matchmaking) of the change, on L{mmoshard.partychanges}' channel."""
        members = tuple(memberIds(plan.party))
        change = PartyChanged(pid, plan.event, plan.subject,
                              plan.party["leader"] if plan.party else None, members,
                              tuple(memberIds(old)))
        try:
            await publishChange(self.store.volatile, change)
        except StoreError as e:
            # The change is made; a matchmaker missing it checks the party
            # again before its ready check ends (docs/matchmaking.md).
            self.log.warn("party {party_id} change {event} not announced: {why}",
                          party_id=pid, event=plan.event, why=e)

    def _requireParty(self, user):
        if not user.partyId:
            raise errors.error(errors.NOT_IN_PARTY, "you are not in a party")
        return user.partyId

    @staticmethod
    def _requireLeader(party, user):
        if party is None or user.cid not in memberIds(party):
            raise errors.error(errors.NOT_IN_PARTY, "you are not in that party")
        if party["leader"] != user.cid:
            raise errors.error(errors.NOT_LEADER, "only the party leader can do that")

    # -- requests ------------------------------------------------------------------

    async def create(self, user, message):
        if user.partyId:
            raise errors.error(errors.ALREADY_IN_PARTY, "you are already in a party")
        return {"party": await self._create(user)}

    async def _create(self, user):
        pid = secrets.token_hex(8)
        party = {"id": pid, "leader": user.cid, "members": [[user.cid, user.name]], "v": 1}

        def planner(current):
            if current is not None:
                raise errors.error(errors.BUSY, "try again")
            return Plan(
                party, ((self.store.partyOfKey(user.cid), "", pid),), "created", user.cid
            )

        try:
            await self.change(pid, planner)
        except errors.ProtocolError:
            raise errors.error(errors.ALREADY_IN_PARTY, "you are already in a party")
        return party

    async def invite(self, user, message):
        name = message.get("name")
        if not isinstance(name, str) or not name:
            raise errors.error(errors.BAD_REQUEST, "name must be a character name")
        if name.lower() == user.name.lower():
            raise errors.error(errors.SELF, "you cannot invite yourself")
        target = await self.store.lookupName(name)
        if target is None:
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        cid, proc = target
        if cid in user.blocks:
            raise errors.error(errors.YOU_BLOCK, f"you block {name}; unblock them first")
        if not user.partyId:
            await self._create(user)
        pid = user.partyId
        _, party = await self.read(pid)
        self._requireLeader(party, user)
        if cid in memberIds(party):
            raise errors.error(errors.ALREADY_IN_PARTY, f"{name} is already in your party")
        if len(party["members"]) >= self.config.party_max:
            raise errors.error(errors.PARTY_FULL, "the party is full")
        ttl = self.config.invite_ttl
        invite = {"party_id": pid, "from": user.cid, "from_name": user.name}
        await self.store.setInvite(cid, pid, invite, ttl)
        body = dict(invite, expires_in=ttl, leader=party["leader"],
                    members=[m[1] for m in party["members"]])
        message = Deliver(
            [cid], "chat.party.invited", body, "party_event", self.router.now(),
            sender=user.cid,
        )
        if not await self.router.routeTo(cid, message, proc):
            await self.store.deleteInvite(cid, pid)
            raise errors.error(errors.OFFLINE, f"{name} is not online")
        return {"party_id": pid, "character_id": cid, "expires_in": ttl}

    async def accept(self, user, message):
        pid = message.get("party_id")
        if not isinstance(pid, str):
            raise errors.error(errors.BAD_REQUEST, "party_id must be a string")
        if user.partyId:
            raise errors.error(errors.ALREADY_IN_PARTY, "leave your party first")
        key = self.store.inviteKey(user.cid, pid)
        invite = await self.store.readInvite(user.cid, pid)
        if invite is None:
            raise errors.error(errors.NO_INVITE, "no such invite, or it expired")
        raw = invite[0]
        limit = self.config.party_max

        def planner(party):
            if party is None:
                raise errors.error(errors.NO_INVITE, "that party no longer exists")
            if user.cid in memberIds(party):
                raise errors.error(errors.ALREADY_IN_PARTY, "you are in that party")
            if len(party["members"]) >= limit:
                raise errors.error(errors.PARTY_FULL, "the party is full")
            new = dict(party, members=party["members"] + [[user.cid, user.name]])
            new["v"] = party["v"] + 1
            return Plan(
                new,
                ((self.store.partyOfKey(user.cid), "", pid), (key, raw, "")),
                "joined", user.cid,
            )

        plan = await self.change(pid, planner)
        return {"party": plan.party}

    async def decline(self, user, message):
        pid = message.get("party_id")
        if not isinstance(pid, str):
            raise errors.error(errors.BAD_REQUEST, "party_id must be a string")
        found = await self.store.readInvite(user.cid, pid)
        if found is None:
            raise errors.error(errors.NO_INVITE, "no such invite, or it expired")
        await self.store.deleteInvite(user.cid, pid)
        invite = found[1]
        await self.router.deliver(
            [invite["from"]], "chat.party.declined",
            {"party_id": pid, "character_id": user.cid, "name": user.name}, "party_event",
        )
        return {}

    async def _onlineOrder(self, party, excluding):
        """Members but C{excluding}, online ones first (their order kept)."""
        others = [m for m in memberIds(party) if m != excluding]
        presence = await self.store.presenceOf(others)
        online = [m for m in others if presence.get(m, {}).get("state") == "online"]
        return online + [m for m in others if m not in online], set(online)

    def _removal(self, pid, party, cid, order, event, subject):
        store = self.store
        if party is None or cid not in memberIds(party):
            raise errors.error(errors.NOT_IN_PARTY, "not in that party")
        remaining = [m for m in party["members"] if m[0] != cid]
        if len(remaining) < 2:
            changes = tuple((store.partyOfKey(m[0]), "*", "") for m in party["members"])
            return Plan(None, changes, "disbanded", subject, (cid,))
        leader = party["leader"]
        if leader == cid:
            leader = next((m for m in order if m != cid and m in memberIds(party)),
                          remaining[0][0])
        remaining.sort(key=lambda m: m[0] != leader)
        new = dict(party, members=remaining, leader=leader, v=party["v"] + 1)
        return Plan(new, ((store.partyOfKey(cid), pid, ""),), event, subject, (cid,))

    async def leave(self, user, message):
        pid = self._requireParty(user)
        _, party = await self.read(pid)
        order = (await self._onlineOrder(party, user.cid))[0] if party else []
        await self.change(
            pid, lambda p: self._removal(pid, p, user.cid, order, "left", user.cid)
        )
        user.partyId = user.party = None
        return {}

    async def kick(self, user, message):
        pid = self._requireParty(user)
        target = message.get("character_id")
        if type(target) is not int or target == user.cid:
            raise errors.error(errors.BAD_REQUEST, "character_id must be another member")

        def planner(party):
            self._requireLeader(party, user)
            if target not in memberIds(party):
                raise errors.error(errors.NOT_A_MEMBER, "that character is not in your party")
            return self._removal(pid, party, target, [user.cid], "kicked", target)

        await self.change(pid, planner)
        return {}

    async def promote(self, user, message):
        pid = self._requireParty(user)
        target = message.get("character_id")
        if type(target) is not int:
            raise errors.error(errors.BAD_REQUEST, "character_id must be a member")

        def planner(party):
            self._requireLeader(party, user)
            if target not in memberIds(party):
                raise errors.error(errors.NOT_A_MEMBER, "that character is not in your party")
            return self._handOver(party, target, "promoted")

        await self.change(pid, planner)
        return {}

    @staticmethod
    def _handOver(party, leader, event):
        members = sorted(party["members"], key=lambda m: m[0] != leader)
        new = dict(party, members=members, leader=leader, v=party["v"] + 1)
        return Plan(new, (), event, leader)

    async def info(self, user, message):
        if not user.partyId:
            return {"party": None}
        _, party = await self.read(user.partyId)
        presence = await self.store.presenceOf(memberIds(party))
        return {
            "party": party,
            "presence": {
                str(cid): publicPresence(presence.get(cid)) for cid in memberIds(party)
            },
            "history": await self.history.read(f"party:{user.partyId}"),
        }

    def say(self, user, message):
        """
        Party chat.  When every member this process knows of is connected
        here, it is delivered at once from this process's view of the party;
        otherwise the party and its members' processes are read in one
        atomic step and each process gets one message.
        """
        router = self.router
        pid = self._requireParty(user)
        text = self.gate.checkSend(user, message.get("text"))
        text = self.gate.filter(user, "party", pid, text)
        ts = router.now()
        body = {"party_id": pid, "from": user.cid, "from_name": user.name, "text": text,
                "ts": ts}
        self.metrics.counted("party")
        self.history.record(f"party:{pid}", ts, body)
        members = user.party["members"] if user.party else ()
        users = self.roster.users
        local = [users.get(m[0]) for m in members]
        if members and all(u is not None and u.partyId == pid for u in local):
            for member in local:
                if member is not user:
                    router.deliverLocal(member, "chat.party.message", body, "party", ts)
            return {"ts": ts}
        cached = self.routes.get(pid)
        if cached is not None and any(m[0] == user.cid for m in cached[0]["members"]):
            router.routeByProc(cached[1], "chat.party.message", body, "party", ts,
                             exclude=user.cid, onGone=lambda: self.routes.pop(pid, None))
            return {"ts": ts}
        return self._sayRouted(user, pid, body, ts)

    async def _sayRouted(self, user, pid, body, ts):
        # Membership and routes come fresh from the store in one step, so a
        # member who joined a moment ago on another process is not missed.
        party, procs = await self.store.partyRoute(pid)
        if party is None or user.cid not in memberIds(party):
            user.partyId = user.party = None
            raise errors.error(errors.NOT_IN_PARTY, "you are not in a party")
        user.party = party
        if len(self.routes) >= 20000:
            self.routes.clear()
        self.routes[pid] = (party, procs)
        self.router.routeByProc(procs, "chat.party.message", body, "party", ts,
                              exclude=user.cid, onGone=lambda: self.routes.pop(pid, None))
        if party["leader"] not in procs:
            d = Deferred.fromCoroutine(self.checkLeader(party, procs))
            d.addErrback(lambda f: self.log.warn(
                "party {party_id} leader check failed: {why}", party_id=pid,
                why=f.getErrorMessage()))
        return {"ts": ts}

    # -- leader hand-over ------------------------------------------------------------

    def leaderLinkDead(self, user):
        """The leader's link dropped: hand the lead over if it stays down past the grace."""
        if not user.party or user.party.get("leader") != user.cid:
            return
        if user.leaderTimer is not None and user.leaderTimer.active():
            return
        user.leaderTimer = self.clock.callLater(self.leaderGrace, self._graceOver, user)

    def _graceOver(self, user):
        user.leaderTimer = None
        if user.state == "online" and self.roster.users.get(user.cid) is user:
            return
        d = Deferred.fromCoroutine(self.handOver(user.partyId, user.cid))
        d.addErrback(lambda f: self.log.failure(
            "party hand-over from {character_id} failed", f, character_id=user.cid))

    async def memberGone(self, user):
        """The character went offline: it keeps its place, but not the lead."""
        if user.partyId and user.party and user.party.get("leader") == user.cid:
            await self.handOver(user.partyId, user.cid)

    async def handOver(self, pid, leader):
        """Give the lead of party C{pid} from C{leader} to its first online member."""
        if not pid:
            return False
        _, party = await self.read(pid)
        if party is None or party["leader"] != leader:
            return False
        order, online = await self._onlineOrder(party, leader)
        if not online:
            return False
        successor = order[0]

        def planner(current):
            if current is None or current["leader"] != leader:
                raise errors.error(errors.BUSY, "the party changed")
            if successor not in memberIds(current):
                raise errors.error(errors.BUSY, "the party changed")
            return self._handOver(current, successor, "leader_changed")

        try:
            await self.change(pid, planner)
        except errors.ProtocolError:
            return False
        self.log.info(
            "party {party_id}: lead passed from {character_id} to {successor}",
            party_id=pid, character_id=leader, successor=successor,
        )
        return True
