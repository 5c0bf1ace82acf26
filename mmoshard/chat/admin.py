"""The chat role's admin routes for the operator console: mute and unmute a character, announce to every player; each audited."""

from twisted.logger import Logger

from mmoshard.audit import actorOf, recordEvent
from mmoshard.chat.messages import Announce, Mute
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.operators import operatorOf
from mmoshard.web.routes import route
from mmoshard.web.schema import Prop

CHAT_ADMIN_ERRORS = ErrorCodes({
    "character.not_found": (404, "no character by that name"),
})
# The longest mute an operator sets here: a year.
MAX_MUTE_MINUTES = 366 * 24 * 60
_NAME = Prop("string", minLength=1, maxLength=32, description="the character's name")


class ChatAdminAPI:
    """
    What the console does through chat, on the node hosting it: the same
    mutes and announcements as the C{chat.mute} and C{chat.announce}
    messages of an operator's session, reaching every chat process through
    chat's own messages, and written to the account audit trail.
    """

    log = Logger()

    def __init__(self, service):
        self.service = service

    async def _character(self, name):
        row = await self.service.social.characterByName(name)
        if row is None:
            raise CHAT_ADMIN_ERRORS.error("character.not_found", f"no character named {name!r}")
        return row

    @route("POST", "/chat/mute", "Mute a character in every chat process (it is told)",
           auth=False, errors=("character.not_found",), body={
               "name": _NAME,
               "minutes": Prop("number", minimum=1, maximum=MAX_MUTE_MINUTES),
               "reason": Prop("string", required=False, maxLength=200, default="")})
    async def mute(self, call):
        svc, body = self.service, call.body
        row = await self._character(body["name"])
        now = svc.clock.seconds()
        until = now + body["minutes"] * 60.0
        reason = body["reason"] or None
        actor = actorOf(operatorOf(call.request))
        await svc.social.muteAudited(row.id, until, reason, (
            row.account_id, "mute", call.ip, now,
            f"character {row.name} ({row.id}) until {until:.0f} by {actor}: {reason or ''}"))
        await svc.router.routeTo(row.id, Mute(row.id, until, reason))
        self.log.info("character {character_id} muted until {until:.0f} by {actor} from {ip}: "
                      "{reason}", character_id=row.id, until=until, actor=actor, ip=call.ip,
                      reason=reason)
        return 200, {"character_id": row.id, "name": row.name, "until": until}

    @route("POST", "/chat/unmute", "Lift a character's mute (it is told)", auth=False,
           errors=("character.not_found",), body={"name": _NAME})
    async def unmute(self, call):
        svc = self.service
        row = await self._character(call.body["name"])
        actor = actorOf(operatorOf(call.request))
        lifted = await svc.social.unmuteAudited(row.id, (
            row.account_id, "unmute", call.ip, svc.clock.seconds(),
            f"character {row.name} ({row.id}) by {actor}"))
        await svc.router.routeTo(row.id, Mute(row.id, None, None))
        self.log.info("character {character_id} unmuted by {actor} from {ip} (was muted: "
                      "{lifted})", character_id=row.id, actor=actor, ip=call.ip, lifted=lifted)
        return 200, {"character_id": row.id, "name": row.name, "lifted": lifted}

    @route("POST", "/chat/announce", "Tell every player online (chat.announcement)",
           auth=False, body={"text": Prop("string", minLength=1, maxLength=500)})
    async def announce(self, call):
        svc = self.service
        now = svc.clock.seconds()
        claims = operatorOf(call.request)
        actor = actorOf(claims)
        text = call.body["text"].strip()
        if not text:
            raise CHAT_ADMIN_ERRORS.error("request.invalid", "the text is blank",
                                          fields={"text": "is blank"})
        body = {"text": text, "from_name": claims.username if claims else "Operator", "ts": now}
        procs = await svc.store.liveProcesses(svc.procId)
        svc.metrics.counted("announce")
        await svc.router.sendToProcs(procs, Announce("chat.announcement", body, now))
        await recordEvent(svc.social.sql, None, "announce", call.ip, now, f"by {actor}: {text}")
        self.log.info("announcement by {actor} to {count} chat process(es): {text}",
                      actor=actor, count=len(procs), text=text)
        return 200, {"processes": len(procs)}


__all__ = ["ChatAdminAPI", "CHAT_ADMIN_ERRORS"]
