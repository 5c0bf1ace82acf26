"""Draining a world node on SIGTERM: its open-world players move to the zones' other nodes, its instances finish first when the operator says so."""

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.world.combat.view import combatFields
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.ids import parseInstanceZone
from mmoshard.world.instances.kills import killedEncounters
from mmoshard.world.players import zoneInfo

# Seconds between two passes of a drain (players who entered or came out of
# an instance meanwhile move at the next pass).
PASS_INTERVAL = 0.5


class Drain:
    """
    One world node's drain (docs/operations.md, "Draining a world node"):
    it stops taking players (C{world.enter} redirects to the zone's other
    node), withdraws its zones, standby zones and instance templates from
    the directory, then hands each open-world zone over: every live player
    in it moves by the ordinary transfer (saved, lease to a ticket,
    C{world.transfer}) to a live node hosting the zone, or failing that to
    one standing by for it, which takes the zone over.  With C{[world]
    drain = "finish"} it goes on until the instances hosted here have no
    players left (they play on; those who come out are handed over).  It
    ends within C{drain_deadline}; what is left is saved by the stop as
    before.
    """

    log = Logger()

    def __init__(self, world):
        """@param world: the L{mmoshard.world.service.WorldService} draining."""
        self.world = world
        self.moved = 0
        self.stayed = {}  # zone id -> players left there (no other node for it)

    async def run(self):
        world = self.world
        cfg = world.config
        clock = world.clock
        # Leave a second of the deadline to the last pass's transfers.
        deadline = clock.seconds() + max(0.0, cfg.drain_deadline - 1.0)
        world.handlers.draining = True
        directory = world.directory
        if directory is not None:
            directory.publish("zones", [])
            directory.publish("standby", [])
            directory.publish("instances", [])
            await directory.beat()
        self.log.info("world of node {node_id} drains ({mode}): {players} players, {instances} instances",
                      node_id=world.nodeId, mode=cfg.drain, players=len(world.roster.byCharacter),
                      instances=len(world.instances.host.instances))
        while True:
            moved = await self.handOver()
            if cfg.drain == "handover":
                moved += await self.moveInstances()
            waiting = cfg.drain == "finish" and self.instancePlayers() > 0
            if not moved and not waiting:
                break
            if clock.seconds() >= deadline:
                self.log.warn("world of node {node_id}: drain deadline reached with {count} players "
                              "in instances", node_id=world.nodeId, count=self.instancePlayers())
                break
            await deferLater(clock, PASS_INTERVAL, lambda: None)
        for zid, count in sorted(self.stayed.items()):
            self.log.warn("world of node {node_id}: no other node hosts or stands by for zone {zone}: "
                          "its {count} players stay until the stop", node_id=world.nodeId, zone=zid,
                          count=count)
        self.log.info("world of node {node_id} drained: {moved} players handed over",
                      node_id=world.nodeId, moved=self.moved)

    def instancePlayers(self):
        """@return: the players in the instances hosted here."""
        world = self.world
        return sum(1 for p in world.roster.byCharacter.values()
                   if parseInstanceZone(p.zone.id) is not None)

    async def handOver(self):
        """One pass: every live player of an open-world zone to that zone's other node. @return: how many moved."""
        world = self.world
        byZone = {}
        for p in list(world.roster.byCharacter.values()):
            if p.state == "live" and parseInstanceZone(p.zone.id) is None:
                byZone.setdefault(p.zone.id, []).append(p)
        self.stayed = {}
        moves = []
        for zid, players in byZone.items():
            host = await world.transfers.findZone(zid, standby=True)
            if host is None:
                self.stayed[zid] = len(players)
                continue
            self.log.info("world of node {node_id} hands zone {zone} over ({count} players)",
                          node_id=world.nodeId, zone=zid, count=len(players))
            # A zone's players are saved together: one transaction, not one each.
            moves.append(Deferred.fromCoroutine(world.transfers.handOverZone(players, host)))
        if not moves:
            return 0
        done = sum(await gatherResults(moves))
        self.moved += done
        return done

    async def moveInstances(self):
        """
        One pass of C{drain = "handover"}: each open instance hosted here
        (arenas apart: they finish) that another live node offers moves
        there with its players.  Its players are taken out and saved where
        they stand inside, the instance is dropped here and its host key
        released (its SQL row stays open), another node re-creates it from
        SQL (L{Instances.locate}: its killed bosses stay dead), then each
        player's lease goes to a ticket and its client is sent
        C{world.transfer} to that node.  All or nothing per instance: when a
        save fails, or a kill is still being written, it stays for the
        next pass.

        @return: how many players moved.
        """
        world = self.world
        moved = 0
        for instance in list(world.instances.host.instances.values()):
            if instance.closing is not None or instance.arena is not None:
                continue
            if not await world.instances.offeredElsewhere(instance.template):
                continue
            moved += await self.moveInstance(instance)
        return moved

    async def moveInstance(self, instance):
        """Move C{instance} and its players (L{moveInstances}); @return: how many players moved."""
        world = self.world
        iid, zone = instance.id, instance.zone
        try:
            written = await killedEncounters(world.instances.sql, iid)
        except StoreError:
            return 0
        if not instance.killed <= set(written):
            return 0  # a kill in flight: its row first
        players = [p for p in world.roster.byCharacter.values()
                   if p.zone is zone and p.state == "live"]
        for p in players:
            p.state = "transferring"
        away = await world.transfers.saveAwayMany(
            [(p, zone, zone.id, (p.entity.x, p.entity.y, p.entity.z)) for p in players],
            tellFailure=False, why="drain")
        if len(away) < len(players) or instance.closing is not None:
            # Not everyone is saved: everyone stays, for the next pass.
            for p in away:
                world.roster.reattach(p, zone)
            return 0
        await world.instances.host.release(iid)
        try:
            placement = await world.instances.locate(iid)
        except InstanceError as e:
            self.log.warn("instance {instance_id} not adopted elsewhere: {why}", instance_id=iid,
                          why=e)
            placement = None
        if placement is None or placement.node == world.nodeId:
            return await self.takeBack(iid, away)
        self.log.info("world of node {node_id} hands instance {instance_id} over to node "
                      "{adopter} ({count} players)", node_id=world.nodeId, instance_id=iid,
                      adopter=placement.node, count=len(away))
        for p in away:
            await world.transfers.handOff(p, placement.zone, placement.endpoints)
        self.moved += len(away)
        return len(away)

    async def takeBack(self, iid, players):
        """No other node adopted instance C{iid}: re-create it here and put C{players} back. @return: 0."""
        world = self.world
        try:
            await world.instances.host.adopt(iid)
            zone = world.instances.host.instances[iid].zone
        except (InstanceError, KeyError) as e:
            self.log.error("instance {instance_id} lost in a drain ({why}): its players leave the "
                           "world", instance_id=iid, why=e)
            for p in players:
                p.session.send("world.kicked", {"reason": "instance unavailable"})
                await world.transfers.abandon(p)
            return 0
        for p in players:
            world.roster.reattach(p, zone)
            e = p.entity
            # A new copy of the same zone: the client's view starts afresh.
            p.session.send("world.zone", {"zone": zoneInfo(zone.spec), "x": e.x, "y": e.y,
                                          "z": e.z, "k": e.corr, **combatFields(zone, e)})
        return 0
