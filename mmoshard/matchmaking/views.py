"""What players and operators are shown of queues, tickets and proposals: the bodies of mm.* replies and events."""

from mmoshard.matchmaking.data import Matched


def queueView(spec):
    """@return: queue C{spec} as mm.hello lists it."""
    return {"name": spec.name, "title": spec.title, "template": spec.template,
            "teams": spec.teams, "team_size": spec.team_size, "quotas": dict(spec.quotas),
            "rated": spec.rated}


def ticketView(ticket, now):
    """@return: C{ticket} as mm.status shows it."""
    return {
        "id": ticket.id,
        "queue": ticket.queue,
        "party_id": ticket.party_id,
        "created": ticket.created,
        "waited_s": round(max(0.0, now - ticket.created), 3),
        "members": [{"character_id": m.character_id, "name": m.name, "roles": list(m.roles)}
                    for m in ticket.members],
    }


def _names(proposal):
    return {m.character_id: m.name for t in proposal.tickets for m in t.members}


def proposalBody(proposal, cid, now):
    """
    @return: the C{mm.proposal} event of C{proposal} for member C{cid}: its
        C{team} and C{role}, the whole roster (C{roles}), the seconds left
        (C{expires_in}) and who accepted so far.
    """
    names = _names(proposal)
    mine = next(s for s in proposal.slots if s.character_id == cid)
    return {
        "match": proposal.match_id,
        "queue": proposal.queue,
        "team": mine.team,
        "role": mine.role,
        "roles": [{"character_id": s.character_id, "name": names.get(s.character_id, ""),
                   "role": s.role, "team": s.team} for s in proposal.slots],
        "expires_in": round(max(0.0, proposal.expires_at - now), 3),
        "accepted": sorted(proposal.accepted),
    }


def allAccepted(proposal):
    """@return: whether every member of C{proposal} accepted."""
    return set(proposal.characterIds) <= set(proposal.accepted)


def ticketOfMember(proposal, cid):
    """@return: the ticket of C{proposal} that C{cid} is a member of, or None."""
    for ticket in proposal.tickets:
        if cid in ticket.characterIds:
            return ticket
    return None


def matchedBody(record):
    """@return: the C{mm.matched} event of a member's stored L{Matched}."""
    return {
        "match": record.match_id, "queue": record.queue, "instance": record.instance,
        "template": record.template, "zone": record.zone, "node": record.node,
        "endpoints": dict(record.endpoints), "ticket": record.ticket, "team": record.team,
        "role": record.role,
    }


def matchedRecords(p, placement, expires_at):
    """@return: each member's L{Matched} of proposal C{p} in C{placement} (stored with its completion)."""
    endpoints = tuple(sorted(dict(placement.endpoints).items()))
    return tuple(Matched(character_id=s.character_id, match_id=p.match_id, queue=p.queue,
                         instance=placement.instance_id, template=placement.template,
                         zone=placement.zone, node=placement.node, endpoints=endpoints,
                         ticket=placement.tickets.get(s.character_id), team=s.team,
                         role=s.role, expires_at=expires_at) for s in p.slots)
