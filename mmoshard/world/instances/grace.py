"""Players inside a party's copy who are no longer in that party: told, and sent out after the [world] leave_party_grace."""

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.world.instances.copies import ownerKey
from mmoshard.world.instances.ids import parseInstanceZone

# Seconds between two looks at the parties of the copies hosted here.
POLL_INTERVAL = 5.0


class PartyWatch:
    """
    Every L{POLL_INTERVAL} seconds, for each copy hosted here with players
    inside and an owning party (C{instance:owner:<id>}, else the party the
    copy was created for): one L{IParties.members} read.  A player inside
    who is not a member is told (C{world.instance.grace}) and, still not
    one C{grace} seconds later, evicted; one back in time is told the
    grace is over.  Copies of no party (solo, or a matchmaker's roster)
    are not watched.  Work is per copy with players, never per tick.
    """

    log = Logger()

    def __init__(self, zones, roster, volatile, parties, clock, tasks, grace, evict):
        """
        @param zones: the zones of this process, by id.
        @param parties: the L{IParties} (None: nothing to watch).
        @param grace: seconds a player out of the party stays inside.
        @param evict: C{evict(player)} -> Deferred: sends it out.
        """
        self.zones = zones
        self.roster = roster
        self.volatile = volatile
        self.parties = parties
        self.clock = clock
        self.tasks = tasks
        self.grace = grace
        self.evict = evict
        # character id -> (instance zone id, DelayedCall of its eviction)
        self.timers = {}
        self.loop = None
        self.polling = False

    def start(self):
        if self.parties is None:
            return
        self.loop = LoopingCall(self.poll)
        self.loop.clock = self.clock
        self.loop.start(POLL_INTERVAL, now=False)

    def stop(self):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        for _, call in self.timers.values():
            if call.active():
                call.cancel()
        self.timers.clear()

    def poll(self):
        """One look at every copy with players here (skipped while the last one still runs)."""
        if self.polling:
            return
        self.polling = True
        d = self.tasks.track(Deferred.fromCoroutine(self._poll()))
        d.addErrback(lambda f: self.log.failure("party watch failed", f))
        d.addBoth(self._polled)

    def _polled(self, _):
        self.polling = False

    async def _poll(self):
        copies = [z for z in self.zones.values()
                  if z.observers and parseInstanceZone(z.id) is not None]
        for zone in copies:
            try:
                members = await self.members(zone)
            except StoreError as e:
                self.log.warn("party of instance {instance_id} not read: {why}",
                              instance_id=parseInstanceZone(zone.id)[1], why=e)
                continue
            if members is None:
                continue
            for cid in list(zone.observers):
                timer = self.timers.get(cid)
                if cid in members:
                    if timer is not None:
                        self._back(cid, zone)
                elif timer is None or timer[0] != zone.id:
                    self._out(cid, zone)

    async def members(self, zone):
        """@return: the member ids of the party owning copy C{zone}, or None when no party owns it."""
        _, instanceId = parseInstanceZone(zone.id)
        raw = await self.volatile.get(ownerKey(instanceId))
        if raw is not None:
            owner = raw.decode("utf-8")
        else:
            instance = getattr(zone, "instance", None)
            owner = instance.partyId if instance is not None else None
        if not owner:
            return None
        return set(await self.parties.members(owner))

    def _out(self, cid, zone):
        player = self.roster.byCharacter.get(cid)
        if player is None:
            return
        old = self.timers.pop(cid, None)
        if old is not None and old[1].active():
            old[1].cancel()
        call = self.clock.callLater(self.grace, self._expired, cid, zone.id)
        self.timers[cid] = (zone.id, call)
        _, instanceId = parseInstanceZone(zone.id)
        player.session.send("world.instance.grace", {"instance_id": instanceId,
                                                     "seconds": self.grace})
        self.log.info("character {character_id} is not in the party of instance {instance_id}: "
                      "out in {seconds} s", character_id=cid, instance_id=instanceId,
                      seconds=self.grace)

    def _back(self, cid, zone):
        _, call = self.timers.pop(cid)
        if call.active():
            call.cancel()
        player = self.roster.byCharacter.get(cid)
        if player is not None:
            _, instanceId = parseInstanceZone(zone.id)
            player.session.send("world.instance.grace", {"instance_id": instanceId,
                                                         "seconds": None})

    def _expired(self, cid, zoneId):
        self.timers.pop(cid, None)
        self.tasks.track(Deferred.fromCoroutine(self._recheck(cid, zoneId))).addErrback(
            lambda f: self.log.failure("eviction of character {character_id} failed", f,
                                       character_id=cid))

    async def _recheck(self, cid, zoneId):
        player = self.roster.byCharacter.get(cid)
        zone = self.zones.get(zoneId)
        if player is None or zone is None or player.zone is not zone:
            return
        # The last look may be up to a poll old: a player back in the party stays.
        try:
            members = await self.members(zone)
        except StoreError as e:
            # Not evicted on a guess: the next look starts the grace again.
            self.log.warn("party of instance {instance_id} not read: {why}",
                          instance_id=parseInstanceZone(zoneId)[1], why=e)
            return
        if members is None or cid in members:
            return
        if self.roster.byCharacter.get(cid) is player and player.zone is zone:
            self.log.info("character {character_id} evicted from instance {instance_id}: not in "
                          "its party", character_id=cid, instance_id=parseInstanceZone(zoneId)[1])
            await self.evict(player)
