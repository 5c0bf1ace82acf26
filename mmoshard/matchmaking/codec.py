"""Tickets, proposals and matched records as msgpack bytes in the volatile store, and back (docs/matchmaking.md "State in the volatile store")."""

import msgpack

from mmoshard.matchmaking.data import Matched, Member, Proposal, Slot, Ticket

# The first item of every stored value: a process that meets a newer format
# (a rolling upgrade) says so instead of misreading it.
FORMAT = 1


class CodecError(ValueError):
    """A stored value this process cannot read (corrupt, or written in a newer format)."""


def encodeTicket(ticket):
    """@return: the bytes a ticket is stored as (they never change while the ticket lives)."""
    members = [[m.character_id, list(m.roles), m.rating, m.name, m.cls] for m in ticket.members]
    return msgpack.packb(
        [FORMAT, ticket.id, ticket.queue, members, ticket.created, ticket.party_id, ticket.node],
        use_bin_type=True,
    )


def encodeProposal(proposal):
    """
    @return: the bytes a proposal is stored as: its tickets by id only (the
        tickets are stored once, as L{encodeTicket} wrote them), its slots,
        times and queue; who accepted lives beside it.
    """
    slots = [[s.character_id, s.ticket_id, s.role, s.team] for s in proposal.slots]
    tickets = [t.id for t in proposal.tickets]
    return msgpack.packb(
        [FORMAT, proposal.match_id, proposal.queue, tickets, slots, proposal.created,
         proposal.expires_at],
        use_bin_type=True,
    )


def encodeMatched(record):
    """@return: the bytes a member's L{Matched} is stored as."""
    return msgpack.packb(
        [FORMAT, record.character_id, record.match_id, record.queue, record.instance,
         record.template, record.zone, record.node, [list(e) for e in record.endpoints],
         record.ticket, record.team, record.role, record.expires_at],
        use_bin_type=True,
    )


def decodeMatched(raw):
    """@return: the L{Matched} stored as C{raw}. @raise CodecError: when unreadable."""
    (_, cid, matchId, queue, instance, template, zone, node, endpoints, ticket, team, role,
     expiresAt) = _unpack(raw, "matched", 13)
    return Matched(character_id=cid, match_id=matchId, queue=queue, instance=instance,
                   template=template, zone=zone, node=node,
                   endpoints=tuple(tuple(e) for e in endpoints), ticket=ticket, team=team,
                   role=role, expires_at=expiresAt)


def _unpack(raw, what, size):
    try:
        value = msgpack.unpackb(raw, raw=False, use_list=True)
    except Exception as e:
        raise CodecError(f"unreadable stored {what}: {e}") from None
    if not isinstance(value, list) or not value or value[0] != FORMAT:
        version = value[0] if isinstance(value, list) and value else None
        raise CodecError(f"stored {what} in format {version!r}; this process reads {FORMAT}")
    if len(value) != size:
        raise CodecError(f"stored {what} has {len(value)} items, not {size}")
    return value


class Codec:
    """
    Decodes stored tickets, remembering the last C{cacheSize} it decoded by
    their bytes: a matcher reads the same waiting tickets pass after pass,
    and a ticket's bytes never change, so each is decoded once.
    """

    def __init__(self, cacheSize=100_000):
        self.cacheSize = cacheSize
        self._tickets = {}

    def ticket(self, raw):
        """@return: the L{Ticket} stored as C{raw}. @raise CodecError: when unreadable."""
        found = self._tickets.get(raw)
        if found is not None:
            return found
        _, tid, queue, members, created, partyId, node = _unpack(raw, "ticket", 7)
        ticket = Ticket(
            id=tid,
            queue=queue,
            members=tuple(
                Member(character_id=m[0], roles=tuple(m[1]), rating=m[2], name=m[3], cls=m[4])
                for m in members
            ),
            created=created,
            party_id=partyId,
            node=node,
        )
        if len(self._tickets) >= self.cacheSize:
            self._tickets.clear()
        self._tickets[raw] = ticket
        return ticket

    def proposal(self, raw, ticketBlobs, accepted):
        """
        @param ticketBlobs: the stored bytes of the proposal's tickets.
        @param accepted: the character ids that accepted so far.
        @return: the L{Proposal} stored as C{raw}.
        """
        _, matchId, queue, _tids, slots, created, expiresAt = _unpack(raw, "proposal", 7)
        return Proposal(
            match_id=matchId,
            queue=queue,
            tickets=tuple(self.ticket(b) for b in ticketBlobs),
            slots=tuple(Slot(character_id=s[0], ticket_id=s[1], role=s[2], team=s[3])
                        for s in slots),
            created=created,
            expires_at=expiresAt,
            accepted=frozenset(accepted),
        )
