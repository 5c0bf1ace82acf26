"""A client's view of its own combat state: the C{combat} field of world.enter, world.zone and world.reset."""


def ms(seconds):
    """@return: C{seconds} as whole milliseconds (the wire's unit)."""
    return int(round(seconds * 1000))


def abilityInfo(spec):
    """@return: what a client's ability bar needs of L{AbilitySpec} C{spec}."""
    return {"id": spec.id, "num": spec.num, "name": spec.name, "kind": spec.kind,
            "target": spec.target, "range": spec.range, "cast_ms": ms(spec.cast),
            "cooldown_ms": ms(spec.cooldown), "gcd_ms": ms(spec.gcd), "cost": spec.cost,
            "radius": spec.radius}


def combatFields(zone, entity):
    """
    @return: C{{"combat": ...}}, the combat state world.enter, world.zone and
        world.reset tell a player about itself (health, resource, its kit's
        abilities in bar order, cooldowns still running), or C{{}} when it
        has no combatant (no combat in the zone, or a class with no kit).
    """
    c = entity.combat
    combat = zone.combat
    if c is None or combat is None:
        return {}
    kit = c.kit
    abilities = combat.data.abilities
    now = zone.clock.seconds()
    return {"combat": {
        "hp": int(c.hp), "hp_max": int(c.hpMax), "resource": int(c.res),
        "resource_kind": kit.resource, "resource_max": int(c.resMax), "dead": c.dead,
        "abilities": [abilityInfo(abilities[a]) for a in kit.abilities if a in abilities],
        "cooldowns": {k: ms(t - now) for k, t in sorted(c.cooldowns.items()) if t > now},
    }}

