"""Zone transfers: portals between zones of this process, hand-offs to the process hosting a zone elsewhere, and redirects on enter."""

import secrets

from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.wire.errors import ProtocolError
from mmoshard.world.handlers import BUSY
from mmoshard.world.combat.view import combatFields
from mmoshard.world.players import place, unplace, zoneInfo


class Transfers:
    """
    Moves players between zones.  A portal to a zone hosted here moves the
    entity at once; to a zone hosted by another node the position is saved
    as the target's, the lease handed to a one-time ticket, and the client
    told where to enter with it.  When nothing can be saved or no node hosts
    the zone, the player stays where it was.
    """

    log = Logger()

    def __init__(self, zones, roster, chat, saves, leases, tasks, directory, nodeId, ticketTtl):
        """
        @param zones: the zones of this process, by id.
        @param roster: the L{Roster} a leaving player is detached from.
        @param chat: the L{ZoneChat} following players between local zones.
        @param saves: the L{Saves} writing the position in the target zone.
        @param leases: the L{LeaseKeeper} handing the lease to a ticket.
        @param tasks: the service's L{Tasks}: transfers in flight finish before it stops.
        @param directory: the L{IDirectory} naming other nodes' zones (None: no other nodes).
        @param nodeId: this node's id (never a transfer target).
        @param ticketTtl: seconds a transfer ticket stays valid.
        """
        self.zones = zones
        self.roster = roster
        self.chat = chat
        self.saves = saves
        self.leases = leases
        self.tasks = tasks
        self.directory = directory
        self.nodeId = nodeId
        self.ticketTtl = ticketTtl

    def portal(self, entity, portal):
        """A zone's portal handler: C{entity} walked into C{portal} this tick."""
        player = self.roster.byCharacter.get(entity.id)
        if player is not None and player.state == "live":
            player.state = "transferring"
            self.tasks.track(Deferred.fromCoroutine(self.transfer(player, portal)))

    async def transfer(self, player, portal):
        """Take C{player} through C{portal} (state C{transferring} until done)."""
        target = self.zones.get(portal.to)
        if target is not None:
            await self._local(player, target, portal.arrive)
            return
        source = player.zone
        host = await self.findZone(portal.to)
        if host is None or player.state != "transferring":
            if player.state == "transferring":
                player.state = "live"
                sx, _, sz = source.spec.spawns[0]
                source.teleport(player.entity, sx, sz)
                player.session.send("world.transfer_failed", {"zone": portal.to})
            return
        await self._remote(player, source, portal.to, portal.arrive, host)

    async def moveTo(self, player, zoneId, arrive, host=None):
        """
        Take live C{player} to zone C{zoneId} at C{arrive} (x, y, z) as a
        portal does: at once when the zone is hosted here, else handed to
        the node at C{host} (its client endpoints; None: the directory's
        node hosting the zone) with a ticket (C{world.transfer}).

        @return: True when the player moved or was handed off; False when
            it did not go: it was not live, no node hosts the zone, or the
            save failed (it is then live where it stood, its client told
            C{world.transfer_failed}, unless it logged out meanwhile).
        """
        if player.state != "live":
            return False
        target = self.zones.get(zoneId)
        if target is not None:
            player.state = "transferring"
            await self._local(player, target, arrive)
            return True
        if host is None:
            host = await self.findZone(zoneId)
        if host is None or player.state != "live":
            return False
        player.state = "transferring"
        return await self._remote(player, player.zone, zoneId, arrive, host)

    async def _local(self, player, target, arrive):
        # Hosted here too: move the entity between zones.
        ax, _, az = arrive
        source = player.zone
        chat = self.chat
        unplace(source, player.entity)
        chat.leave(player.characterId, source.id)
        e = player.entity
        e.x, e.z = ax, az
        e.corr += 1
        player.zone = target
        place(target, e, player.session)
        player.state = "live"
        chat.join(player.characterId, target.id)
        self.roster.where.moved(player)
        player.session.send("world.zone", {"zone": zoneInfo(target.spec), "x": e.x,
                                           "y": e.y, "z": e.z, "k": e.corr,
                                           **combatFields(target, e)})
        await self.saves.soon(player)

    async def _remote(self, player, source, zoneId, arrive, host):
        """@return: True when handed off to the node at C{host}."""
        if not await self.saveAway(player, source, zoneId, arrive):
            return False
        await self.handOff(player, zoneId, host)
        return True

    async def saveAway(self, player, source, zoneId, arrive, tellFailure=True):
        """
        The first half of a hand-off: take C{player} out of C{source} here
        and save it at C{arrive} (x, y, z) in C{zoneId}.

        @param tellFailure: on a failed save, tell its client
            C{world.transfer_failed} (else the caller decides).
        @return: True when saved (detached here; its lease still held,
            for L{handOff}); False when it did not leave: not saved (live
            again in C{source}, unless it logged out meanwhile), or it
            entered here again meanwhile.
        """
        return bool(await self.saveAwayMany([(player, source, zoneId, arrive)], tellFailure))

    async def saveAwayMany(self, moves, tellFailure=True, why="transfer"):
        """
        L{saveAway} for many players at once, their positions saved in one
        transaction (a draining node's zone: one write, not one per player).

        @param moves: (player, source zone, target zone id, (x, y, z)) tuples.
        @return: the players saved away, as L{saveAway} says of each.
        """
        roster = self.roster
        rows = []
        for player, _, zoneId, (ax, ay, az) in moves:
            roster.detach(player)
            rows.append((zoneId, ax, ay, az, player.characterId))
        saved = await self.saves.rows(rows, why) == len(rows)
        away = []
        for player, source, zoneId, _ in moves:
            cid = player.characterId
            log = dict(character_id=cid, account_id=player.row.account_id)
            if cid in roster.byCharacter or cid in roster.entering:
                # Entered here again meanwhile (a new session): the character and
                # its lease are that player's now; its own saves win.
                self.log.info("transfer of character {character_id} dropped: it entered again here",
                              **log)
            elif saved:
                away.append(player)
            elif player.session.ended:
                # Logged out during the save: nobody to put back.  The row
                # keeps the last successful save; the lease goes now.
                await self._abandon(player, log)
            else:
                # Not saved: nothing moved.
                roster.reattach(player, source)
                if tellFailure:
                    player.session.send("world.transfer_failed", {"zone": zoneId})
        return away

    async def handOverZone(self, players, host):
        """
        Take the live C{players} of one zone, each where it stands, to the
        node at C{host} (its client endpoints): this node drains.  They are
        saved in one transaction, then each lease goes to a ticket and each
        client is told (C{world.transfer}).

        @return: how many were handed off.
        """
        moves = []
        for p in players:
            if p.state == "live":
                p.state = "transferring"
                e = p.entity
                moves.append((p, p.zone, p.zone.id, (e.x, e.y, e.z)))
        away = await self.saveAwayMany(moves, why="drain")
        await gatherResults([Deferred.fromCoroutine(self.handOff(p, p.zone.id, host))
                             for p in away])
        return len(away)

    async def handOff(self, player, zoneId, host):
        """
        The second half: give the lease of C{player} (saved away by
        L{saveAway}) to a one-time ticket and tell its client to enter
        C{zoneId} on the node at C{host} (its client endpoints) with it
        (C{world.transfer}).
        """
        ticket = secrets.token_urlsafe(16)
        log = dict(character_id=player.characterId, account_id=player.row.account_id)
        try:
            await self.leases.handoff(player.characterId, ticket, self.ticketTtl)
        except StoreError as e:
            # The lease runs out by itself; the row already names the target.
            self.log.warn("transfer of character {character_id}: lease handoff failed: {why}",
                          why=e, **log)
        self.log.info("character {character_id} (account {account_id}) transfers to {zone}",
                      zone=zoneId, **log)
        player.session.send("world.transfer", {"character_id": player.entity.id,
                                               "zone": zoneId, "ticket": ticket, **host})

    async def abandon(self, player):
        """Release the lease of C{player}, saved away but handed to nobody (its zone went nowhere)."""
        await self._abandon(player, dict(character_id=player.characterId,
                                         account_id=player.row.account_id))

    async def _abandon(self, player, log):
        try:
            await self.leases.release(player.characterId)
        except StoreError as e:
            # No longer refreshed: it runs out within the lease TTL.
            self.log.warn("lease of character {character_id} not released: {why}", why=e, **log)
        self.log.warn("character {character_id} (account {account_id}) logged out during a "
                      "failed transfer save: out of {zone}, unsaved since its last save",
                      zone=player.zone.id, **log)

    async def redirect(self, zoneId, row, draining=False):
        """
        @param draining: this node drains: a node standing by for the zone will do.
        @return: the world.enter reply sending character C{row} to the node hosting C{zoneId}.
        """
        host = await self.findZone(zoneId, standby=draining)
        if host is None:
            raise ProtocolError(BUSY, f"zone {zoneId!r} is not hosted right now", retry_after=5.0)
        return {"character_id": row.id, "redirect": {"zone": zoneId, **host}}

    async def findZone(self, zoneId, standby=False):
        """
        @param standby: failing a live node hosting the zone, one standing
            by for it (its directory entry's C{standby}) will do.
        @return: the endpoints ({tcp, websocket}) of a live node hosting C{zoneId}, or None.
        """
        directory = self.directory
        if directory is None:
            return None
        try:
            entries = await directory.endpointsFor("world")
        except StoreError:
            return None
        others = [e for e in entries if e.node_id != self.nodeId]
        found = [e for e in others if zoneId in e.info.get("zones", ())]
        if not found and standby:
            found = [e for e in others if zoneId in e.info.get("standby", ())]
        for entry in found:
            return {k: v for k, v in entry.endpoints.items() if k in ("tcp", "websocket")}
        return None
