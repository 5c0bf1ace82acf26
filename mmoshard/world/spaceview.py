"""What a world node tells the operator console of its spaces: a summary of each (players, NPCs, tick times) and one space's map and entities, asked over the volatile store or on its own admin site."""

from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.web.spaces import (
    ASK_CHANNEL, SpaceDetail, SpaceEntity, SpacesAnswer, SpacesAsk, SpaceSummary,
)
from mmoshard.world.instances.entry import EntrancePortal, ExitPortal
from mmoshard.world.metrics import zoneLabel

# Seconds of tick times a summary's mean and maximum cover.
TICK_WINDOW = 2.0


def _where(portal):
    """@return: what the console's map writes on C{portal}: where it leads."""
    if isinstance(portal, EntrancePortal):
        return f"instance {portal.template}"
    if isinstance(portal, ExitPortal):
        return "exit"
    return portal.to


def _entity(e):
    c = e.combat
    account = e.session.accountId if e.session is not None else None
    if c is None:
        return SpaceEntity(e.id, e.kind, e.name, round(e.x, 2), round(e.z, 2), e.level,
                           None, None, False, account)
    return SpaceEntity(e.id, e.kind, e.name, round(e.x, 2), round(e.z, 2), e.level,
                       int(c.hp), int(c.hpMax), bool(c.dead), account)


class SpaceAnswerer:
    """
    Answers the console's L{SpacesAsk}s (mmoshard/web/spaces.py) about the
    spaces of C{service} (the L{mmoshard.world.service.WorldService}).
    """

    log = Logger()

    def __init__(self, service, volatile, nodeId):
        self.service = service
        self.volatile = volatile
        self.nodeId = nodeId
        self._subscription = None

    def tickTimes(self, label, now):
        """@return: (mean, max) in ms of the label's tick durations over the last L{TICK_WINDOW} s."""
        ring = self.service.tickLog.get(label)
        if not ring:
            return 0.0, 0.0
        since = now - TICK_WINDOW
        total = count = 0
        worst = 0.0
        for at, duration in reversed(ring):
            if at < since:
                break
            total += duration
            count += 1
            worst = max(worst, duration)
        if not count:
            return 0.0, 0.0
        return round(total / count * 1000.0, 3), round(worst * 1000.0, 3)

    def summaries(self):
        """@return: a L{SpaceSummary} per hosted space, by zone id."""
        now = self.service.clock.seconds()
        out = []
        for zid in sorted(self.service.zones):
            zone = self.service.zones[zid]
            label = zoneLabel(zid)
            players = len(zone.observers)
            mean, worst = self.tickTimes(label, now)
            instance = zone.instance.id if zone.instance is not None else None
            out.append(SpaceSummary(zid, label, instance, players,
                                    len(zone.entities) - players, mean, worst))
        return tuple(out)

    def detail(self, zoneId):
        """@return: the L{SpaceDetail} of hosted zone C{zoneId}, or None when not hosted here."""
        zone = self.service.zones.get(zoneId)
        if zone is None:
            return None
        spec = zone.spec
        blocked = tuple([r.x0, r.z0, r.x1, r.z1] for r in spec.blocked)
        portals = tuple([p.rect.x0, p.rect.z0, p.rect.x1, p.rect.z1, _where(p)]
                        for p in spec.portals)
        entities = tuple(_entity(e) for e in zone.entities.values())
        return SpaceDetail(zone.id, zone.tickIndex, spec.width, spec.depth, blocked, portals,
                           entities)

    def answer(self, askId, zoneId=None):
        """@return: this node's L{SpacesAnswer} to question C{askId}."""
        detail = self.detail(zoneId) if zoneId is not None else None
        return SpacesAnswer(askId, self.nodeId, self.summaries(), detail)

    async def start(self):
        """Listen for the console's questions (a store outage leaves the console without this node)."""
        try:
            self._subscription = await self.volatile.subscribe(ASK_CHANNEL, self._asked)
        except StoreError as e:
            self.log.warn("world node {node_id} cannot hear the console's questions: {why}",
                          node_id=self.nodeId, why=e)

    async def stop(self):
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except StoreError:
                pass

    def _asked(self, channel, message):
        try:
            ask = SpacesAsk.decode(message)
        except Exception:
            self.log.warn("ignoring a malformed spaces question on {channel}", channel=channel)
            return
        d = self.volatile.publish(ask.reply, self.answer(ask.ask_id, ask.zone).encode())
        d.addErrback(lambda f: self.log.warn(
            "world node {node_id} could not answer the console: {why}",
            node_id=self.nodeId, why=f.getErrorMessage()))


__all__ = ["SpaceAnswerer", "TICK_WINDOW"]
