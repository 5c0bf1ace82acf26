"""The zone id of an instance, "<template>/<instance id>", and back."""


def instanceZoneId(template, instanceId):
    """@return: the zone id of instance C{instanceId} of C{template} (what characters.zone holds)."""
    return f"{template}/{int(instanceId)}"


def parseInstanceZone(zoneId):
    """
    @return: C{(template, instance id)} when C{zoneId} names an instance,
        else None (an open-world zone: zone ids of etc/zones.toml have no "/").
    """
    template, sep, rest = zoneId.partition("/")
    if not sep or not template or not rest.isdigit():
        return None
    return template, int(rest)
