"""A character speaking on this chat process, and how presence looks from outside."""

import attrs
import msgpack

STATUSES = ("online", "away", "busy", "invisible")


class ChatUser:
    """The chat state of one local character: its session, social lists, party and channels."""

    __slots__ = (
        "session", "cid", "name", "accountId", "operator", "status", "text", "state",
        "friends", "blocks", "partyId", "party", "channels", "zone", "bucket",
        "mutedUntil", "muteReason", "leaderTimer",
    )

    def __init__(self, session, row, bucket):
        self.session = session
        self.cid = row.id
        self.name = row.name
        self.accountId = row.account_id
        self.operator = row.is_operator or _claimsOperator(session)
        self.status = "online"
        self.text = ""
        self.state = "online"
        self.friends = {}  # cid -> name
        self.blocks = {}  # cid -> name
        self.partyId = None
        self.party = None  # the last party snapshot (dict) seen
        self.channels = set()
        self.zone = None
        self.bucket = bucket
        self.mutedUntil = None
        self.muteReason = None
        self.leaderTimer = None

    def presenceFields(self, sid):
        return {
            "sid": sid,
            "state": self.state,
            "status": self.status,
            "text": self.text,
            "name": self.name,
        }

    def publicPresence(self):
        return publicPresence(
            {"state": self.state, "status": self.status, "text": self.text}
        )

    def watchers(self):
        """Characters told about this one's presence: friends and party members."""
        out = set(self.friends)
        if self.party:
            out.update(m[0] for m in self.party["members"])
        out.discard(self.cid)
        return out


def _claimsOperator(session):
    claims = getattr(session, "claims", None)
    has = getattr(claims, "has", None)
    return bool(has and has("operator"))


def publicPresence(fields):
    """
    @param fields: a presence entry (dict of str) or None.
    @return: what others see: invisible and absent characters are offline.
    """
    if not fields or fields.get("status") == "invisible" or not fields.get("state"):
        return {"state": "offline", "status": "offline", "text": ""}
    return {
        "state": fields["state"],
        "status": fields.get("status") or "online",
        "text": fields.get("text") or "",
    }


@attrs.frozen
class Carried:
    """
    What a session's character takes along when the session is resumed on
    another node (C{chat:sess:<session id>}): the new node's chat rebuilds
    the character from it without a C{chat.hello}.
    """

    cid: int
    status: str
    text: str
    channels: tuple  # the named channels joined (zone channels follow the zone)

    @classmethod
    def of(cls, user):
        named = tuple(sorted(c for c in user.channels if not c.startswith("zone:")))
        return cls(user.cid, user.status, user.text, named)

    def encode(self):
        return msgpack.packb([self.cid, self.status, self.text, list(self.channels)])

    @classmethod
    def decode(cls, raw):
        """@raise ValueError: C{raw} is not an encoded L{Carried}."""
        try:
            cid, status, text, channels = msgpack.unpackb(raw)
        except Exception as e:
            raise ValueError(f"bad carried chat state: {e}") from e
        if type(cid) is not int or status not in STATUSES or not isinstance(text, str):
            raise ValueError("bad carried chat state")
        return cls(cid, status, text, tuple(str(c) for c in channels))
