"""The chat role's keys and scripts over the volatile store."""

import json

from twisted.internet.defer import Deferred

from mmoshard import partystore, zonechat
from mmoshard.chat import scripts
from mmoshard.store.common import Script
from mmoshard.store.slots import everyBatch, slotBatches, splitBySlot


def _str(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _decodeTree(value):
    """Turn the bytes in a script's (nested) reply into str."""
    if isinstance(value, (list, tuple)):
        return [_decodeTree(v) for v in value]
    if value is False:
        return None
    return _str(value)


class ChatStore:
    """
    Named chat keys and the chat scripts on one L{IVolatileStore}: every
    chat read or write of the volatile store goes through here.

    Keys (all under the store's prefix):
      - C{chat:proc:<proc>} a chat process's liveness, with the presence TTL
      - C{chat:procs} set of chat process ids (pruned when found dead)
      - C{chat:inbox:<proc>} pub/sub channel of one chat process
      - C{chat:pr:<cid>} presence hash: proc, sid, state, status, text, name
      - C{chat:nm:<name lower>} "<cid>|<proc>" for whispers by name
      - C{chat:sess:<session id>} what a session's character takes along
        when the session moves to another node (L{mmoshard.chat.users.Carried})
      - C{chat:party:{<pid>}} party JSON; C{chat:pof:<cid>} a member's party id
      - C{chat:inv:{<pid>}:<cid>} a pending invite (JSON), expiring (in its
        party's slot on Redis Cluster, so accepting is one script)
      - C{chat:zone:<cid>} the zone the world role put a character in
      - C{chat:zones} pub/sub channel of zone changes (L{mmoshard.zonechat})
      - C{chat:ch:{<name>}:m} / C{:p} channel members (cid -> proc) and
        per-process member counts
      - C{chat:h:<channel or party:pid>} history sorted set
    """

    def __init__(self, volatile):
        self.volatile = volatile
        self._scripts = {}

    # -- keys ----------------------------------------------------------------

    @staticmethod
    def procKey(proc):
        return f"chat:proc:{proc}"

    PROCS = "chat:procs"

    @staticmethod
    def inbox(proc):
        return f"chat:inbox:{proc}"

    @staticmethod
    def presenceKey(cid):
        return f"chat:pr:{cid}"

    @staticmethod
    def nameKey(name):
        return f"chat:nm:{name.lower()}"

    @staticmethod
    def sessionKey(sessionId):
        return f"chat:sess:{sessionId}"

    # Shared with the core's IParties of processes without chat (mmoshard.partystore).
    partyKey = staticmethod(partystore.partyKey)
    partyOfKey = staticmethod(partystore.partyOfKey)

    @staticmethod
    def inviteKey(cid, pid):
        return f"chat:inv:{{{pid}}}:{cid}"

    # Shared with the world role's processes (mmoshard.zonechat).
    zoneKey = staticmethod(zonechat.zoneKey)

    @staticmethod
    def channelKeys(channel):
        # The channel name is the hash tag: one slot for both on Redis Cluster.
        return (f"chat:ch:{{{channel}}}:m", f"chat:ch:{{{channel}}}:p")

    @staticmethod
    def historyKey(target):
        return f"chat:h:{target}"

    # -- processes and their inboxes ------------------------------------------

    async def announceProcess(self, proc, ttl):
        """Mark chat process C{proc} alive for C{ttl} seconds and list it."""
        await self.volatile.set(self.procKey(proc), "1", ttl=ttl)
        await self.volatile.sadd(self.PROCS, proc)

    async def withdrawProcess(self, proc):
        await self.volatile.srem(self.PROCS, proc)
        await self.volatile.delete(self.procKey(proc))

    async def processAlive(self, proc):
        return await self.volatile.get(self.procKey(proc)) is not None

    async def liveProcesses(self, mine):
        """@return: the ids of every live chat process (C{mine} always), pruning dead ones."""
        live = []
        for proc in await self.volatile.smembers(self.PROCS):
            proc = _str(proc)
            if proc == mine or await self.processAlive(proc):
                live.append(proc)
            else:
                await self.volatile.srem(self.PROCS, proc)
        return live

    def subscribeInbox(self, proc, callback):
        """@return: a Deferred firing with the subscription to C{proc}'s inbox."""
        return self.volatile.subscribe(self.inbox(proc), callback)

    def publishInbox(self, proc, payload):
        """@return: a Deferred firing with the number of processes that got C{payload}."""
        return self.volatile.publish(self.inbox(proc), payload)

    def subscribeZones(self, callback):
        """Listen for zone changes announced by processes without chat."""
        return self.volatile.subscribe(zonechat.ZONES_CHANNEL, callback)

    # -- zones, parties, invites -------------------------------------------------

    async def zoneOf(self, cid):
        return _str(await self.volatile.get(self.zoneKey(cid)))

    async def setZone(self, cid, zoneId, ttl):
        await self.volatile.set(self.zoneKey(cid), zoneId, ttl=ttl)

    async def clearZone(self, cid, zoneId):
        """Forget C{cid}'s zone if it is C{zoneId}; @return: True when it was."""
        if await self.zoneOf(cid) != zoneId:
            return False
        await self.volatile.delete(self.zoneKey(cid))
        return True

    async def partyOf(self, cid):
        return _str(await self.volatile.get(self.partyOfKey(cid)))

    async def readParty(self, pid):
        """@return: (raw JSON, party dict), or ("", None) when there is none."""
        raw = await self.volatile.get(self.partyKey(pid))
        if raw is None:
            return "", None
        raw = _str(raw)
        return raw, json.loads(raw)

    async def setInvite(self, cid, pid, invite, ttl):
        await self.volatile.set(self.inviteKey(cid, pid), json.dumps(invite), ttl=ttl)

    async def readInvite(self, cid, pid):
        """@return: (raw JSON, invite dict), or None when there is none."""
        raw = await self.volatile.get(self.inviteKey(cid, pid))
        if raw is None:
            return None
        raw = _str(raw)
        return raw, json.loads(raw)

    async def deleteInvite(self, cid, pid):
        await self.volatile.delete(self.inviteKey(cid, pid))

    # -- scripts ---------------------------------------------------------------

    def _script(self, name):
        script = self._scripts.get(name)
        if script is None:
            lua, python = scripts.SCRIPTS[name]
            script = self._scripts[name] = Script(name, lua, scriptTwin(python))
        return script

    async def run(self, name, keys, args):
        result = await self.volatile.evalScript(
            self._script(name), list(keys), [str(a) for a in args]
        )
        return result

    def together(self, keys):
        """@return: whether one script may take all of C{keys} (always, but on a Redis Cluster)."""
        return len(self.volatile.groupBySlot(keys)) <= 1

    async def cas(self, changes, ttl):
        """
        Apply C{changes}, a list of (key, expected, new) with the L{scripts}
        conventions, atomically: their keys must share a slot (L{together}).

        @return: True when every expectation held and the writes were made.
        """
        keys = [c[0] for c in changes]
        args = []
        for _, want, new in changes:
            args.extend((want, new))
        args.append(ttl)
        return bool(int(await self.run("chat_cas", keys, args)))

    async def _perSlot(self, script, items, keyOf, argsOf, size=500):
        """
        Run C{script} over C{items} in batches of one hash slot (one batch of
        up to C{size} on a single Redis), sent together.
        @return: the replies, in batch order, with their batches.
        """
        batches = slotBatches(self.volatile, items, keyOf, size)
        # everyBatch raises a batch's own failure (a StoreError the handlers
        # answer as chat.unavailable), not gatherResults' FirstError.
        replies = await everyBatch(batches, lambda batch: Deferred.fromCoroutine(
            self.run(script, [keyOf(i) for i in batch], argsOf(batch))))
        return list(zip(batches, replies))

    async def expireMany(self, keys, ttl, chunk=500):
        """@return: how many of C{keys} existed (and got the new TTL)."""
        return sum(await self.expireEach(keys, ttl, chunk))

    async def expireEach(self, keys, ttl, chunk=500):
        """@return: for each of C{keys}, in order, whether it existed (and got the new TTL)."""
        keys = list(keys)
        done = await self._perSlot("chat_expire", keys, str, lambda b: [ttl], chunk)
        kept = {}
        for batch, reply in done:
            kept.update(zip(batch, (digit == "1" for digit in _str(reply))))
        return [kept[key] for key in keys]

    async def presenceOf(self, cids):
        """
        @return: a dict cid -> dict of presence fields (absent: offline).
        """
        cids = list(cids)
        if not cids:
            return {}
        done = await self._perSlot("chat_presence", cids, self.presenceKey, lambda b: [])
        out = {}
        for batch, reply in done:
            for cid, row in zip(batch, _decodeTree(reply)):
                if row and row[0] is not None:
                    out[cid] = dict(zip(scripts.PRESENCE_FIELDS, row))
        return out

    async def partyRoute(self, pid):
        """
        @return: (party dict, {cid: proc}), or (None, {}) when the party
            does not exist; offline members have no proc.  Two reads: the
            party, then its members' presence (a change in between is told
            by the party's update event, which drops cached routes).
        """
        _, party = await self.readParty(pid)
        if party is None:
            return None, {}
        presence = await self.presenceOf([m[0] for m in party["members"]])
        return party, {cid: p["proc"] for cid, p in presence.items() if p.get("proc")}

    async def setPresence(self, cid, name, proc, fields, ttl):
        args = [ttl, f"{cid}|{proc}"]
        for k, v in fields.items():
            args.extend((k, v))
        keys = [self.presenceKey(cid), self.nameKey(name)]
        if self.together(keys):
            await self.run("chat_presence_set", keys, args)
        else:
            # Redis Cluster: the name key lives in its own slot, written just after.
            await self.run("chat_presence_set", keys[:1], args)
            await self.volatile.set(keys[1], args[1], ttl=ttl)

    async def dropPresence(self, cid, name, proc, sid):
        keys = [self.presenceKey(cid), self.nameKey(name)]
        value = f"{cid}|{proc}"
        if self.together(keys):
            return bool(int(await self.run("chat_presence_drop", keys, [sid, value])))
        dropped = bool(int(await self.run("chat_presence_drop", keys[:1], [sid, value])))
        if dropped:
            # Only if it still names this process (the TTL is unused: a delete).
            await self.cas([(keys[1], value, "")], 1)
        return dropped

    async def carry(self, sessionId, raw, ttl):
        """Keep what the session's character takes along to another node (encoded L{Carried})."""
        await self.volatile.set(self.sessionKey(sessionId), raw, ttl=ttl)

    async def carried(self, sessionId):
        """@return: the encoded L{Carried} of C{sessionId}, or None."""
        return await self.volatile.get(self.sessionKey(sessionId))

    async def dropCarried(self, sessionId):
        await self.volatile.delete(self.sessionKey(sessionId))

    async def lookupName(self, name):
        """@return: (cid, proc) of an online character named C{name}, or None."""
        value = await self.volatile.get(self.nameKey(name))
        if value is None:
            return None
        cid, _, proc = _str(value).partition("|")
        return int(cid), proc

    async def pushHistory(self, entries, keep, ttl):
        """C{entries}: list of (target, score, dict)."""
        if not entries or keep <= 0:
            return
        for batch in splitBySlot(self.volatile, entries, lambda e: self.historyKey(e[0])):
            keys = [self.historyKey(t) for t, _, _ in batch]
            args = [keep, ttl]
            for _, score, entry in batch:
                args.extend((repr(float(score)), json.dumps(entry, separators=(",", ":"))))
            await self.run("chat_history", keys, args)

    async def history(self, target):
        members = await self.volatile.zrangebyscore(
            self.historyKey(target), float("-inf"), float("inf")
        )
        return [json.loads(_str(m)) for m in members]

    async def joinChannel(self, channel, cid, proc, limit):
        return bool(
            int(await self.run("chat_chan_join", self.channelKeys(channel), [cid, proc, limit]))
        )

    async def leaveChannel(self, channel, cid, proc=""):
        return bool(
            int(await self.run("chat_chan_leave", self.channelKeys(channel), [cid, proc]))
        )

    async def purgeChannel(self, channel, proc):
        return int(await self.run("chat_chan_purge", self.channelKeys(channel), [proc]))

    async def channelProcs(self, channel):
        counts = await self.volatile.hgetall(self.channelKeys(channel)[1])
        return [p for p, n in counts.items() if int(n) > 0]

    async def channelMembers(self, channel):
        members = await self.volatile.hgetall(self.channelKeys(channel)[0])
        return {int(c): _str(p) for c, p in members.items()}


def scriptTwin(python):
    """
    Adapt a twin of L{scripts} to the memory store's calling convention:
    arguments arrive as bytes, the twins take str.
    """

    def twin(view, keys, args):
        return python(view, keys, [a.decode("utf-8") for a in args])

    return twin
