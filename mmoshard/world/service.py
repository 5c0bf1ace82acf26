"""WorldService: owns the hosted zones and their tick loops, and wires the world's parts (handlers, saves, leases, transfers) together."""

import random
from collections import deque

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IDraining

from mmoshard.world.drain import Drain
from mmoshard.world.combat.handlers import CombatHandlers
from mmoshard.world.combat.npcs import Npcs
from mmoshard.world.combat.system import Combat
from mmoshard.world.combat.rewards import Rewards
from mmoshard.world.handlers import WorldHandlers
from mmoshard.world.instances.entry import Entry, withEntrances
from mmoshard.world.instances.grace import PartyWatch
from mmoshard.world.instances.handlers import InstanceHandlers
from mmoshard.world.instances.encounters import Encounters
from mmoshard.world.instances.kills import Kills
from mmoshard.world.instances.service import Instances
from mmoshard.world.items import ItemHandlers
from mmoshard.world.lease import LeaseKeeper, Leases
from mmoshard.world.metrics import WorldMetrics, zoneLabel
from mmoshard.world.players import Roster, Tasks, Whereabouts, ZoneChat
from mmoshard.world.progression import Progression
from mmoshard.world.saves import Saves
from mmoshard.world.sim import Zone
from mmoshard.world.spaceview import SpaceAnswerer
from mmoshard.world.ticker import FixedRateLoop
from mmoshard.world.transfer import Transfers

# Recent tick durations kept per zone (per template for instances' zones)
# for /world/ticks (10 minutes of one zone at 10 Hz).
TICK_LOG = 6000


@implementer(IDraining)
class WorldService(Service):
    """
    The world role's service: one L{Zone} and tick loop per hosted zone, a
    once-a-second housekeeping loop (periodic saves, lease refreshes,
    traffic figures), and the parts it builds and starts:

      - L{Roster}: the players live here, and zone chat membership;
      - L{WorldHandlers}: world.enter/move/leave and the session listener;
      - a L{Combat} per zone (C{zone.combat}) and L{CombatHandlers}:
        world.cast/stop_cast/release;
      - L{Npcs} per zone (C{zone.npcs}): its packs spawn when the service
        starts;
      - L{Saves}: logout, transfer, periodic and shutdown position saves;
      - L{LeaseKeeper}: the characters' leases;
      - L{Transfers}: portals and redirects to other nodes' zones;
      - L{Progression}: the L{IProgression} the role provides;
      - L{ItemHandlers}: world.inventory and world.item.*; L{Rewards}: exp
        and loot of the NPCs that die in the zones' combat;
      - L{Instances}: the L{IInstances} the role provides, and the instances
        hosted here (zones added and removed at run time: L{addZone},
        L{removeZone}); L{Encounters} per instance (its bosses and trash)
        and L{Kills}: boss kills written in one transaction each;
      - L{Entry}, L{InstanceHandlers} and L{PartyWatch}: into and out of
        instances (world.instance.*, entrance and exit portals, the grace
        of players out of their copy's party).
    """

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, sql, volatile, router,
                 directory=None, admin=None, zoneChannels=None, parties=None, locator=None,
                 matchResults=None):
        """
        @param config: the C{[world]} section.
        @param metrics: the node's Prometheus registry.
        @param router: the L{IMessageRouter} world.* messages arrive by.
        @param directory: the L{IDirectory} (None: no transfers to other nodes).
        @param admin: the L{IAdminSite} (None: no /world admin routes).
        @param zoneChannels: the L{IZoneChannels} players join (None: no zone chat).
        @param parties: the L{IParties} kill exp is split by (None: everyone solo).
        @param locator: the L{ILocator} told where players are (None: nobody).
        @param matchResults: the L{IMatchResults} arena outcomes go to (None: not rated).
        """
        self.setName("world")
        self.config = cfg = config
        self.clock = reactor
        self.nodeId = nodeId
        self.router = router
        self.directory = directory
        self.admin = admin
        # Open-world zones get the entrance portals of the instances in them.
        templates = cfg.templates.values()
        self.zones = {zid: Zone(withEntrances(cfg.specs[zid], templates), reactor, cfg.interest)
                      for zid in cfg.hosted}
        # Zones taken over when their node drains or vanishes (takeover).
        self.standby = {zid: withEntrances(cfg.specs[zid], templates) for zid in cfg.standby or ()}
        self.drainDeadline = cfg.drain_deadline
        self.draining = None
        self.loops = {}
        self.tickLog = {}
        self.bytesPerClient = {}
        self._lastBytes = {}
        self.housekeeping = None
        self.second = 0
        self.metrics = WorldMetrics(metrics, self)
        self.tasks = tasks = Tasks()
        self.chat = chat = ZoneChat(zoneChannels, tasks)
        self.roster = roster = Roster(chat, Whereabouts(locator, tasks))
        self.matchResults = matchResults
        self.saves = saves = Saves(sql, reactor, tasks, roster.byCharacter, cfg.save_interval,
                                   self.metrics.saves.observe)
        self.leases = leases = LeaseKeeper(Leases(volatile, nodeId, cfg.lease_ttl), roster, reactor)
        self.transfers = transfers = Transfers(self.zones, roster, chat, saves, leases, tasks,
                                               directory, nodeId, cfg.transfer_ttl)
        self.entry = entry = Entry(cfg, self.zones, roster, transfers, saves, leases, tasks, sql,
                                   volatile, parties, reactor, nodeId)
        self.partyWatch = PartyWatch(self.zones, roster, volatile, parties, reactor, tasks,
                                     cfg.leave_party_grace, entry.evict)
        startZone = cfg.start_zone if cfg.start_zone in self.zones else None
        self.handlers = WorldHandlers(sql, self.zones, startZone, cfg.max_players, roster,
                                      saves, leases, transfers, tasks, landing=entry.landing,
                                      takeover=self.takeover)
        self.instanceHandlers = InstanceHandlers(entry, roster)
        self.combatHandlers = CombatHandlers(roster.bySession)
        self.progression = Progression(sql, reactor, roster.progressed, roster.leveled)

        self.items = ItemHandlers(self.progression, roster)
        self.rewards = Rewards(self.progression, parties, roster, tasks, reactor)
        for zone in self.zones.values():
            self._equip(zone)
        self.instances = Instances(self, sql, volatile, directory, reactor, nodeId)
        entry.instances = self.instances
        self.instances.onEvict = entry.onEvict
        self.kills = Kills(sql, reactor, cfg.game.items if cfg.game is not None else {}, roster,
                           tasks, pause=cfg.test_pause_kill)
        self.instances.host.opened.append(self._openEncounters)
        # What the operator console sees of the spaces here (docs/clients.md).
        self.spaceViews = SpaceAnswerer(self, volatile, nodeId)

    def _openEncounters(self, instance):
        """An instance opened here: its trash and living bosses spawn and their scripts run."""
        # Seeded from the OS, as combat: add places, random targets, loot seeds.
        Encounters(instance, self.kills, random.Random()).start()

    def _equip(self, zone):
        """Give C{zone} its portals, combat, NPCs and rewards."""
        cfg = self.config
        zone.portalHandler = self.entry.portal
        # Seeded from the OS: tests that need a fixed roll set zone.combat.rng.
        zone.combat = Combat(zone, cfg.game, random.Random(), pvp=zone.spec.pvp)
        # Seeded by the zone: its NPCs stand at the same points on every start.
        zone.npcs = Npcs(zone, zone.combat, cfg.game, self.clock, random.Random(f"npcs:{zone.id}"))
        self.rewards.attach(zone)

    # --- zones made and unmade at run time -----------------------------------

    def addZone(self, spec):
        """
        Host a zone made at run time (an instance's copy of its template's
        layout): with its combat, NPCs (its C{spec.packs} spawn now) and
        rewards, and its own tick loop; the directory's C{zones} lists it from
        the next heartbeat.

        @param spec: a L{mmoshard.world.zones.ZoneSpec}; its id is the zone id.
        @return: the new L{Zone}.
        @raise ValueError: a zone with that id is hosted already.
        """
        zid = spec.id
        if zid in self.zones:
            raise ValueError(f"zone {zid!r} is hosted already")
        zone = Zone(spec, self.clock, self.config.interest)
        self._equip(zone)
        self.zones[zid] = zone
        if self.running:
            self._run(zid, zone)
            self._publishZones()
        return zone

    def removeZone(self, zoneId):
        """
        Stop hosting zone C{zoneId}: its loop stops, its NPCs go.  Only an
        empty zone goes (the caller sends its players elsewhere first).

        @raise ValueError: players are still in it.
        @raise KeyError: no such zone here.
        """
        zone = self.zones[zoneId]
        if zone.observers:
            raise ValueError(f"zone {zoneId!r} still has {len(zone.observers)} players")
        loop = self.loops.pop(zoneId, None)
        if loop is not None:
            loop.stop()
        if zone.npcs is not None:
            zone.npcs.despawn()
        del self.zones[zoneId]
        self._lastBytes.pop(zoneId, None)
        self.bytesPerClient.pop(zoneId, None)
        self._publishZones()

    def _publishZones(self):
        if self.directory is not None and self.draining is None:
            self.directory.publish("zones", sorted(self.zones))
            self.directory.publish("standby", sorted(z for z in self.standby if z not in self.zones))

    # --- draining and taking over ------------------------------------------

    async def takeover(self, zoneId, ticket):
        """
        C{WorldHandlers.takeover}: host standby zone C{zoneId} from now on,
        for a character handed over with C{ticket} by its draining node, or
        entering when no live node hosts the zone (its node vanished).

        @return: the zone, or None (not a standby zone here; or its node is
            alive: the character is redirected there).
        """
        spec = self.standby.get(zoneId)
        if spec is None or self.draining is not None:
            return None
        if zoneId not in self.zones and ticket is None:
            if await self.transfers.findZone(zoneId) is not None:
                return None
        zone = self.zones.get(zoneId)
        if zone is None:
            zone = self.addZone(spec)
            self.log.info("world of node {node_id} takes zone {zone} over", node_id=self.nodeId,
                          zone=zoneId)
        return zone

    def drain(self):
        """L{IDraining}: hand the zones over (L{Drain}); the stop then saves what is left."""
        self.draining = Drain(self)
        return Deferred.fromCoroutine(self.draining.run())

    def _run(self, zid, zone):
        """Spawn the NPCs of a hosted zone and start its tick loop."""
        zone.npcs.spawn()
        loop = FixedRateLoop(self.clock, zone.spec.tickInterval, zone.tick,
                             observe=self._observer(zid))
        self.loops[zid] = loop
        loop.start()

    # --- lifetime ----------------------------------------------------------

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        self.router.addHandlers("world", self.handlers.handlers())
        self.router.addHandlers("world", self.combatHandlers.handlers())
        self.router.addListener(self.handlers)
        self.router.addHandlers("world", self.items.handlers())
        self.router.addHandlers("world", self.instanceHandlers.handlers())
        directory = self.directory
        if directory is not None:
            self._publishZones()
            directory.addLoadSource(
                "players", lambda: sum(len(z.observers) for z in self.zones.values())
            )
        for zid, zone in list(self.zones.items()):
            self._run(zid, zone)
        await self.instances.start()
        admin = self.admin
        if admin is not None:
            from mmoshard.world.admin import makeWorldAdmin

            admin.putChild(b"world", makeWorldAdmin(self))
        await self.spaceViews.start()
        self.housekeeping = LoopingCall(self._everySecond)
        self.housekeeping.clock = self.clock
        self.housekeeping.start(1.0, now=False)
        self.partyWatch.start()
        engines = {("native" if z.space.native else "python") for z in self.zones.values()}
        self.log.info("world of node {node_id} hosts zones {zones} (interest space: {engine})",
                      node_id=self.nodeId, zones=",".join(self.zones), engine=",".join(sorted(engines)))

    def _observer(self, zid):
        # The zones of one label (an instance template's copies) share a
        # histogram child and a ring: their number does not grow with copies.
        label = zoneLabel(zid)
        histogram = self.metrics.observer(label)
        ring = self.tickLog.get(label)
        if ring is None:
            ring = self.tickLog[label] = deque(maxlen=TICK_LOG)
        seconds = self.clock.seconds

        def observe(duration, overrun):
            histogram(duration, overrun)
            ring.append((seconds(), duration))

        return observe

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        await self.spaceViews.stop()
        for loop in self.loops.values():
            loop.stop()
        if self.housekeeping is not None and self.housekeeping.running:
            self.housekeeping.stop()
        self.partyWatch.stop()
        roster = self.roster
        players = list(roster.byCharacter.values())
        for p in players:
            roster.detach(p)
        # One transaction for everyone, then one lease call.
        await self.saves.rows([p.position() + (p.characterId,) for p in players], "shutdown")
        await self.tasks.drain()
        await self.saves.flush()
        await self.leases.releaseAll()
        # Last: until the players are saved no other node may adopt their instances.
        await self.instances.stop()
        self.log.info("world of node {node_id} stopped: saved {count} characters",
                      node_id=self.nodeId, count=len(players))

    # --- housekeeping --------------------------------------------------------

    def _everySecond(self):
        self.second += 1
        self.saves.periodic(self.second)
        if self.second % max(1, int(self.config.lease_refresh)) == 0:
            self.tasks.track(Deferred.fromCoroutine(self.leases.refresh()))
        try:
            self.instances.everySecond(self.second)
        except Exception:
            # Not the housekeeping loop's end: saves and leases go on.
            self.log.failure("node {node_id}: the instances' second failed", node_id=self.nodeId)
        for zid, zone in self.zones.items():
            total = zone.stats.bytesOut
            last = self._lastBytes.get(zid, total)
            self._lastBytes[zid] = total
            n = len(zone.observers)
            self.bytesPerClient[zid] = (total - last) / n if n else 0.0
