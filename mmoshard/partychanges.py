"""Party changes announced to other roles: the channel and frozen message chat publishes on every party change (matchmaking listens)."""

import attrs
import msgpack
from twisted.logger import Logger

# Where chat announces each applied party change (under the store prefix).
PARTY_CHANGES_CHANNEL = "parties:changes"

# The events chat's parties announce (docs/chat.md, chat.party.update).
EVENTS = ("created", "joined", "left", "kicked", "disbanded", "promoted", "leader_changed")


@attrs.frozen
class PartyChanged:
    """
    Party C{party_id} changed by C{event} (one of L{EVENTS}) about
    character C{subject}: C{members} are its members now (leader first;
    empty once disbanded), C{former} those before the change.
    """

    party_id: str
    event: str
    subject: int | None
    leader: int | None
    members: tuple
    former: tuple

    @property
    def everyone(self):
        """@return: the members before and after the change, each once."""
        return tuple(dict.fromkeys(self.former + self.members))


def encodeChange(change):
    """@return: the bytes published for C{change}."""
    return msgpack.packb([change.party_id, change.event, change.subject, change.leader,
                          list(change.members), list(change.former)], use_bin_type=True)


def decodeChange(payload):
    """@return: the L{PartyChanged} in C{payload}; ValueError if malformed."""
    try:
        pid, event, subject, leader, members, former = msgpack.unpackb(payload, raw=False)
    except Exception as e:
        raise ValueError(f"malformed party change: {e}") from None
    if (not isinstance(pid, str) or event not in EVENTS or not isinstance(members, list)
            or not isinstance(former, list)
            or not all(type(c) is int for c in members + former)):
        raise ValueError("malformed party change")
    return PartyChanged(pid, event, subject, leader, tuple(members), tuple(former))


def publishChange(volatile, change):
    """Announce C{change} on L{PARTY_CHANGES_CHANNEL}; @return: a Deferred (receivers)."""
    return volatile.publish(PARTY_CHANGES_CHANNEL, encodeChange(change))


def subscribeChanges(volatile, callback):
    """
    Call C{callback(PartyChanged)} for every party change announced.
    Malformed payloads are dropped.

    @return: a Deferred firing with the L{ISubscription}.
    """
    def received(channel, payload):
        try:
            change = decodeChange(payload)
        except ValueError as e:
            Logger(namespace=__name__).warn("dropped a party change on {channel}: {why}",
                                            channel=channel, why=e)
            return
        callback(change)

    return volatile.subscribe(PARTY_CHANGES_CHANNEL, received)
