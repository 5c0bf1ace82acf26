"""When a template's lockouts reset: daily at its reset_hour UTC, or weekly on its reset_day at that hour."""

from mmoshard.world.instances.data import WEEKDAYS

DAY = 86400
HOUR = 3600
# 1970-01-01, day 0 of the epoch, was a Thursday.
_EPOCH_WEEKDAY = WEEKDAYS.index("thu")


def nextReset(spec, now):
    """
    @param spec: an L{InstanceSpec} (its C{lockout}, C{reset_hour},
        C{reset_day}).
    @param now: epoch seconds.
    @return: the epoch seconds (an int) of the first reset strictly after
        C{now}: a kill at the very moment of a reset binds until the next one.
    """
    day = int(now // DAY)
    if spec.lockout == "weekly":
        weekday = (day + _EPOCH_WEEKDAY) % 7
        day += (WEEKDAYS.index(spec.reset_day) - weekday) % 7
        step = 7 * DAY
    else:
        step = DAY
    at = day * DAY + spec.reset_hour * HOUR
    while at <= now:
        at += step
    return at
