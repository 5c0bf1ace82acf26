"""The world.instance.* requests: enter (a template or a Placement's ticket), leave, lockouts."""

from twisted.internet.defer import Deferred

from mmoshard.wire.errors import ProtocolError
from mmoshard.world.handlers import BAD, BUSY, NOT_IN_WORLD
from mmoshard.world.instances.errors import InstanceError

# Longest template id or ticket accepted (template ids are short names).
MAX_FIELD = 128


class InstanceHandlers:
    """
    The session side of L{mmoshard.world.instances.entry.Entry}: checks the
    requests, finds the live player of the session, and answers an
    L{InstanceError} as its typed error (with its extra fields, such as
    C{reset_at}).  docs/instances.md, "Protocol".
    """

    def __init__(self, entry, roster):
        """
        @param entry: the L{Entry} doing the work.
        @param roster: the L{Roster}: the session's player.
        """
        self.entry = entry
        self.bySession = roster.bySession

    def handlers(self):
        """@return: the world.instance.* handlers, for L{IMessageRouter.addHandlers}."""
        return {
            "world.instance.enter": self.onEnter,
            "world.instance.leave": self.onLeave,
            "world.instance.lockouts": self.onLockouts,
        }

    def _live(self, session):
        player = self.bySession.get(session)
        if player is None or player.state != "live":
            raise ProtocolError(NOT_IN_WORLD, "no live character on this session")
        if self.entry.busy(player.characterId):
            raise ProtocolError(BUSY, "an instance entry or exit is in flight", retry_after=1.0)
        return player

    def onEnter(self, session, message):
        template = message.get("template")
        ticket = message.get("ticket")
        if (template is None) == (ticket is None):
            raise ProtocolError(BAD, "send either template or ticket")
        value = template if ticket is None else ticket
        if not isinstance(value, str) or not 0 < len(value) <= MAX_FIELD:
            raise ProtocolError(BAD, f"template and ticket are strs of 1..{MAX_FIELD} characters")
        player = self._live(session)
        if ticket is not None:
            return _answer(self.entry.enterTicket(player, ticket))
        return _answer(self.entry.enterTemplate(player, template))

    def onLeave(self, session, message):
        return _answer(self.entry.leave(self._live(session)))

    def onLockouts(self, session, message):
        player = self.bySession.get(session)
        if player is None:
            raise ProtocolError(NOT_IN_WORLD, "no character on this session")

        async def lockouts():
            return {"lockouts": await self.entry.lockouts(player.characterId)}

        return Deferred.fromCoroutine(lockouts())


def _answer(coroutine):
    """@return: a Deferred of the coroutine's reply, its L{InstanceError} as a ProtocolError."""

    async def run():
        try:
            return await coroutine
        except InstanceError as e:
            raise ProtocolError(e.code, e.message, e.retry_after, e.details)

    return Deferred.fromCoroutine(run())
