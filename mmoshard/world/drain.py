"""Draining a world node on SIGTERM: its open-world players move to the zones' other nodes, its instances finish first when the operator says so."""

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.world.instances.ids import parseInstanceZone

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
            moves.extend(Deferred.fromCoroutine(world.transfers.handOver(p, host)) for p in players)
        if not moves:
            return 0
        done = sum(1 for ok in await gatherResults(moves) if ok)
        self.moved += done
        return done
