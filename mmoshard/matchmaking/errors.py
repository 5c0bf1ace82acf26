"""The typed errors of mm.* requests (docs/matchmaking.md "Errors")."""

from mmoshard.wire.errors import ProtocolError

UNKNOWN_QUEUE = "mm.unknown_queue"
NOT_LEADER = "mm.not_leader"
ALREADY_QUEUED = "mm.already_queued"
MEMBER_OFFLINE = "mm.member_offline"
ROLE_UNAVAILABLE = "mm.role_unavailable"
NO_HELLO = "mm.no_hello"
NOT_YOUR_CHARACTER = "mm.not_your_character"
NOT_QUEUED = "mm.not_queued"
UNKNOWN_MATCH = "mm.unknown_match"
PARTY_TOO_LARGE = "mm.party_too_large"
UNAVAILABLE = "mm.unavailable"
BAD_REQUEST = "mm.bad_request"

CODES = (UNKNOWN_QUEUE, NOT_LEADER, ALREADY_QUEUED, MEMBER_OFFLINE, ROLE_UNAVAILABLE, NO_HELLO,
         NOT_YOUR_CHARACTER, NOT_QUEUED, UNKNOWN_MATCH, PARTY_TOO_LARGE, UNAVAILABLE, BAD_REQUEST)


class MatchmakingError(ProtocolError):
    """An mm.* request refused: C{code} one of L{CODES}."""
