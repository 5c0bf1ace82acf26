"""The packed combat records a world.u carries in its C{c} field: one 16-byte struct per event."""

import struct

# Every combat event is one little-endian record of 16 bytes:
#   kind (uint8), flags (uint8), ability (uint16: the ability's wire number,
#   0 for a melee swing), a (uint32), b (uint32), value (int32).
# What a, b and value mean depends on the kind (docs/combat.md has the table).
RECORD = struct.Struct("<BBHIIi")
RECORD_SIZE = RECORD.size

CAST_START = 1  # a = caster, b = target (0: none / ground), value = cast time in ms
CAST_FINISH = 2  # a = caster, b = target, value = 0
CAST_INTERRUPT = 3  # a = caster, b = interrupter (0: moved or stopped), value = 0
DAMAGE = 4  # a = source, b = target, value = amount dealt (after absorbs); flags
HEAL = 5  # a = source, b = target, value = amount healed (overheal excluded); flags
HEALTH = 6  # a = entity, b = maximum health, value = health now
AURA_ON = 7  # a = source, b = bearer, value = duration in ms
AURA_OFF = 8  # a = source, b = bearer, value = 0
DEATH = 9  # a = killer (0: unknown), b = the dead entity, value = 0
REVIVE = 10  # a = reviver (0: released / respawned), b = entity, value = health
RESOURCE = 11  # a = entity, b = maximum resource, value = resource now
EVADE = 12  # a = the NPC, b = 0, value = 1 evading (immune, walking home), 0 done

# flags
CRIT = 0x01  # DAMAGE / HEAL: a critical hit
ABSORBED = 0x02  # DAMAGE: some of it was absorbed by a shield
IMMUNE = 0x04  # DAMAGE: the target was immune (value 0)

_pack = RECORD.pack


def record(kind, a, b, value=0, ability=0, flags=0):
    """@return: the 16 bytes of one combat event."""
    return _pack(kind, flags, ability, a, b, value)


def records(data):
    """@return: the (kind, flags, ability, a, b, value) tuples packed in C{data}."""
    return list(RECORD.iter_unpack(data))
