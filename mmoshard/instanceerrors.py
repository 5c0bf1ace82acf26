"""The typed errors of instances (world.instance.* requests, IInstances calls), shared by the world role and the core's IInstances client."""

UNKNOWN_TEMPLATE = "instance.unknown_template"
NO_CAPACITY = "instance.no_capacity"  # no world process offers it, or all are full
UNAVAILABLE = "instance.unavailable"  # no world process answered in time
LOCKED = "instance.locked"  # bound to another copy until reset_at
NOT_LEADER = "instance.not_leader"  # only the party leader creates the party's copy
PARTY_FULL = "instance.party_full"  # more players than the template's party_size
NOT_IN_INSTANCE = "instance.not_in_instance"
CLOSED = "instance.closed"
BAD_TICKET = "instance.bad_ticket"
BAD_MATCH = "instance.bad_match"  # IInstances.create of an arena without two teams and a match id

CODES = (UNKNOWN_TEMPLATE, NO_CAPACITY, UNAVAILABLE, LOCKED, NOT_LEADER, PARTY_FULL,
         NOT_IN_INSTANCE, CLOSED, BAD_TICKET, BAD_MATCH)


class InstanceError(Exception):
    """
    An instance request refused: C{code} one of L{CODES}; C{details} extra
    fields for the client (e.g. C{reset_at} with L{LOCKED}).
    """

    def __init__(self, code, message="", retry_after=None, **details):
        Exception.__init__(self, code, message)
        self.code = code
        self.message = message or code
        self.retry_after = retry_after
        self.details = details
