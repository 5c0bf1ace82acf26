"""The chat role's configuration: fields, the frozen config class and cross-field checks."""

import attrs

from mmoshard.config import Field, Problem, nonNegative, positive


def _filterPath(value):
    if value and ":" not in value and "." not in value:
        return "must be a dotted path to a callable, e.g. mypackage.chatfilter.make"
    return None


FIELDS = {
    "max_length": Field("int", 255, positive, "longest message text in characters"),
    "status_text_length": Field("int", 64, positive),
    "rate": Field("float", 2.0, positive, "chat messages per second per player"),
    "burst": Field("int", 8, positive, "messages a player may send at once"),
    "presence_ttl": Field(
        "float", 30.0, positive,
        "seconds a presence entry outlives its process's last refresh",
    ),
    "whisper_ack_timeout": Field("float", 3.0, positive),
    "party_max": Field("int", 5, positive, "largest party"),
    "party_ttl": Field(
        "float", 3600.0, positive, "seconds a party outlives its last online member"
    ),
    "invite_ttl": Field("float", 60.0, positive, "seconds a party invite stays valid"),
    "leader_grace": Field(
        "float", -1.0, None,
        "seconds a link-dead leader keeps the lead (-1: the session resume grace)",
    ),
    "channel_max_members": Field("int", 1000, positive),
    "zone_max_members": Field("int", 0, nonNegative, "0: no limit"),
    "max_channels": Field("int", 10, positive, "channels one player may be in"),
    "history": Field("int", 50, nonNegative, "messages kept per channel and party"),
    "history_ttl": Field("float", 86400.0, positive),
    "max_friends": Field("int", 200, positive),
    "max_blocks": Field("int", 500, positive),
    "filter": Field(
        "str", "", _filterPath,
        "dotted path of a callable(config) -> IChatFilter; empty: the built-in filter",
    ),
    "banned_words": Field("strlist", (), None, "words the built-in filter masks"),
}


@attrs.frozen
class ChatConfig:
    """The frozen [chat] section."""

    max_length: int = 255
    status_text_length: int = 64
    rate: float = 2.0
    burst: int = 8
    presence_ttl: float = 30.0
    whisper_ack_timeout: float = 3.0
    party_max: int = 5
    party_ttl: float = 3600.0
    invite_ttl: float = 60.0
    leader_grace: float = -1.0
    channel_max_members: int = 1000
    zone_max_members: int = 0
    max_channels: int = 10
    history: int = 50
    history_ttl: float = 86400.0
    max_friends: int = 200
    max_blocks: int = 500
    filter: str = ""
    banned_words: tuple = ()


def validate(values, path, problems):
    """Cross-field checks of the [chat] table."""
    if values["party_max"] < 2:
        problems.append(Problem(f"{path}.party_max", "must be at least 2"))
    if values["leader_grace"] < 0 and values["leader_grace"] != -1.0:
        problems.append(
            Problem(f"{path}.leader_grace", "must be 0 or more, or -1 for the resume grace")
        )
    if values["presence_ttl"] < 3:
        problems.append(Problem(f"{path}.presence_ttl", "must be at least 3 seconds"))
