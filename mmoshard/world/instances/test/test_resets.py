"""Lockout resets: daily at the template's reset hour UTC, weekly on its reset day; always strictly after now."""

import calendar

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.world.instances.data import InstanceSpec
from mmoshard.world.instances.resets import nextReset


def spec(**values):
    """@return: a template with only its lockout fields meaningful."""
    fields = dict(id="crypt", name="The Crypt", kind="dungeon", party_size=5, layout=None, exit=None,
                  entrance=None, bosses=())
    return InstanceSpec(**dict(fields, **values))


def utc(year, month, day, hour=0, minute=0, second=0):
    """@return: the epoch seconds of a UTC date and time."""
    return calendar.timegm((year, month, day, hour, minute, second))


class DailyTests(TestCase):
    def test_beforeTheHour(self):
        """Before the reset hour, the reset is that day at the hour."""
        daily = spec(reset_hour=9)
        self.assertEqual(nextReset(daily, utc(2024, 3, 5, 8, 59, 59)), utc(2024, 3, 5, 9))

    def test_atTheHour(self):
        """At the reset hour itself the reset is the next day's: a kill then binds for a whole day."""
        daily = spec(reset_hour=9)
        self.assertEqual(nextReset(daily, utc(2024, 3, 5, 9)), utc(2024, 3, 6, 9))
        self.assertEqual(nextReset(daily, utc(2024, 3, 5, 9) + 0.5), utc(2024, 3, 6, 9))
        self.assertEqual(nextReset(daily, utc(2024, 3, 5, 9) - 0.5), utc(2024, 3, 5, 9))

    def test_aroundMidnight(self):
        """Either side of midnight UTC, a reset at 0:00 is the coming midnight, at 23:00 that day's or the next."""
        midnight = spec(reset_hour=0)
        self.assertEqual(nextReset(midnight, utc(2024, 3, 5, 23, 59, 59)), utc(2024, 3, 6))
        self.assertEqual(nextReset(midnight, utc(2024, 3, 6)), utc(2024, 3, 7))
        late = spec(reset_hour=23)
        self.assertEqual(nextReset(late, utc(2024, 3, 5, 23, 59, 59)), utc(2024, 3, 6, 23))
        self.assertEqual(nextReset(late, utc(2024, 3, 6, 0, 0, 1)), utc(2024, 3, 6, 23))

    def test_monthAndYearEnds(self):
        """Resets cross the end of a month, of a leap February and of a year."""
        daily = spec(reset_hour=9)
        self.assertEqual(nextReset(daily, utc(2024, 2, 28, 10)), utc(2024, 2, 29, 9))
        self.assertEqual(nextReset(daily, utc(2024, 2, 29, 10)), utc(2024, 3, 1, 9))
        self.assertEqual(nextReset(daily, utc(2024, 12, 31, 12)), utc(2025, 1, 1, 9))

    def test_integerSeconds(self):
        """The reset is whole epoch seconds (what SQL reset_at holds)."""
        self.assertIsInstance(nextReset(spec(), utc(2024, 3, 5) + 0.25), int)


class WeeklyTests(TestCase):
    # 2024-03-05 is a Tuesday.

    def test_laterThatWeek(self):
        """A weekly reset is the next reset day at the reset hour."""
        tuesday = spec(lockout="weekly", reset_day="tue", reset_hour=9)
        self.assertEqual(nextReset(tuesday, utc(2024, 3, 1, 12)), utc(2024, 3, 5, 9))  # from a Friday
        self.assertEqual(nextReset(tuesday, utc(2024, 3, 4, 23, 59)), utc(2024, 3, 5, 9))  # from a Monday night

    def test_onTheResetDay(self):
        """On the reset day, before the hour it is that day; at or after the hour, a week later."""
        tuesday = spec(lockout="weekly", reset_day="tue", reset_hour=9)
        self.assertEqual(nextReset(tuesday, utc(2024, 3, 5, 8)), utc(2024, 3, 5, 9))
        self.assertEqual(nextReset(tuesday, utc(2024, 3, 5, 9)), utc(2024, 3, 12, 9))
        self.assertEqual(nextReset(tuesday, utc(2024, 3, 5, 10)), utc(2024, 3, 12, 9))

    def test_weekBoundaries(self):
        """Across Sunday into Monday (and a year end), and for every weekday, the reset lands on its day."""
        monday = spec(lockout="weekly", reset_day="mon", reset_hour=0)
        self.assertEqual(nextReset(monday, utc(2024, 3, 10, 23, 59, 59)), utc(2024, 3, 11))
        self.assertEqual(nextReset(monday, utc(2024, 3, 11)), utc(2024, 3, 18))
        sunday = spec(lockout="weekly", reset_day="sun", reset_hour=23)
        self.assertEqual(nextReset(sunday, utc(2024, 12, 30, 1)), utc(2025, 1, 5, 23))
        for i, day in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")):
            at = nextReset(spec(lockout="weekly", reset_day=day, reset_hour=4), utc(2024, 3, 10, 12))
            self.assertEqual(at, utc(2024, 3, 11 + i, 4), day)

    def test_dailyIgnoresTheDay(self):
        """A daily lockout resets every day whatever its reset_day."""
        daily = attrs.evolve(spec(reset_hour=9), reset_day="sun")
        self.assertEqual(nextReset(daily, utc(2024, 3, 5, 10)), utc(2024, 3, 6, 9))
