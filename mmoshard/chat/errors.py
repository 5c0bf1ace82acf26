"""The chat role's stable error codes (listed in docs/chat.md)."""

from mmoshard.wire.errors import ProtocolError

BAD_REQUEST = "chat.bad_request"
NO_HELLO = "chat.no_hello"
NOT_YOUR_CHARACTER = "chat.not_your_character"
OFFLINE = "chat.offline"
NO_SUCH_CHARACTER = "chat.no_such_character"
TOO_LONG = "chat.too_long"
RATE_LIMITED = "chat.rate_limited"
MUTED = "chat.muted"
FILTERED = "chat.filtered"
YOU_BLOCK = "chat.you_block"
SELF = "chat.self"
FRIENDS_FULL = "chat.friends_full"
BLOCKS_FULL = "chat.blocks_full"
ALREADY_FRIENDS = "chat.already_friends"
NO_REQUEST = "chat.no_request"
NOT_FRIENDS = "chat.not_friends"
NOT_IN_PARTY = "chat.not_in_party"
ALREADY_IN_PARTY = "chat.already_in_party"
NOT_LEADER = "chat.not_leader"
PARTY_FULL = "chat.party_full"
NO_INVITE = "chat.no_invite"
NOT_A_MEMBER = "chat.not_a_member"
BAD_CHANNEL = "chat.bad_channel"
CHANNEL_FULL = "chat.channel_full"
TOO_MANY_CHANNELS = "chat.too_many_channels"
NOT_IN_CHANNEL = "chat.not_in_channel"
FORBIDDEN = "chat.forbidden"
UNAVAILABLE = "chat.unavailable"
BUSY = "chat.busy"

CODES = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))


def error(code, message, retry_after=None):
    """@return: the L{ProtocolError} a handler raises to refuse a request."""
    return ProtocolError(code, message, retry_after)
