"""The typed errors of world.cast and the other combat requests."""

UNKNOWN_ABILITY = "combat.unknown_ability"
OUT_OF_RANGE = "combat.out_of_range"
ON_COOLDOWN = "combat.on_cooldown"
NO_RESOURCE = "combat.no_resource"
INVALID_TARGET = "combat.invalid_target"
DEAD = "combat.dead"
BUSY = "combat.busy"
NOT_DEAD = "combat.not_dead"  # world.release while alive

CODES = (UNKNOWN_ABILITY, OUT_OF_RANGE, ON_COOLDOWN, NO_RESOURCE, INVALID_TARGET, DEAD, BUSY,
         NOT_DEAD)


class CombatError(Exception):
    """
    A combat request the server refuses: C{code} is one of L{CODES} (the
    error code the client gets), C{retry_after} (seconds, or None) says when
    a cooldown or the global cooldown ends.
    """

    def __init__(self, code, message="", retry_after=None):
        Exception.__init__(self, code, message)
        self.code = code
        self.message = message or code
        self.retry_after = retry_after
