"""The fixed-rate tick loop: exact deadlines, no drift, no burst after a slow tick."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.world.ticker import FixedRateLoop


class TickerTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(500.0)
        self.calls = []
        self.slow = {}
        self.observed = []

        def func(index, dt):
            self.calls.append((index, round(dt, 6), round(self.clock.seconds(), 6)))
            self.clock.advance(self.slow.get(index, 0.0))

        self.loop = FixedRateLoop(self.clock, 0.1, func,
                                  observe=lambda d, o: self.observed.append((round(d, 6), o)))
        self.loop.start()

    def test_exactDeadlinesNoDrift(self):
        """Ten thousand ticks later the loop is still on its original deadline grid."""
        for k in range(1, 10001):
            self.clock.advance(500.0 + k * 0.1 - self.clock.seconds())
        self.assertEqual(len(self.calls), 10000)
        self.assertEqual(self.calls[-1][0], 10000)
        # Deadlines come from the origin: after 10,000 ticks still on the grid.
        self.assertAlmostEqual(self.calls[-1][2], 500.0 + 1000.0, places=6)
        self.assertEqual(self.loop.skipped, 0)

    def test_slowTickSkipsInsteadOfBursting(self):
        """
        After a slow tick the deadlines it covered are skipped, not run back to back,
        and dt covers them.
        """
        self.slow[3] = 0.35  # tick 3 takes 350 ms
        for k in range(1, 101):
            self.clock.advance(500.0 + k * 0.01 - self.clock.seconds())
        indexes = [c[0] for c in self.calls]
        # Ticks 4, 5, 6 fell inside the slow tick: skipped, not run back to back.
        self.assertEqual(indexes[:4], [1, 2, 3, 7])
        t3, t7 = self.calls[2][2], self.calls[3][2]
        self.assertAlmostEqual(t3, 500.3)
        self.assertAlmostEqual(t7, 500.7)
        self.assertAlmostEqual(self.calls[3][1], 0.4)  # dt covers the skipped ticks
        self.assertEqual(self.loop.skipped, 3)
        self.assertEqual(self.loop.overruns, 1)
        self.assertEqual(self.observed[2], (0.35, True))
        # Later ticks are back on the original grid.
        self.assertAlmostEqual(self.calls[-1][2] - 500.0, round(self.calls[-1][2] - 500.0, 1))
        gaps = [round(b[2] - a[2], 6) for a, b in zip(self.calls[3:], self.calls[4:])]
        self.assertEqual(set(gaps), {0.1})

    def test_lateWakeupRunsNewestIndex(self):
        """A late wake-up runs one tick with the newest index and counts the skipped ones."""
        self.clock.advance(0.35)  # the reactor was blocked: one call, index 3
        self.assertEqual([c[0] for c in self.calls], [3])
        self.assertEqual(self.loop.skipped, 2)
        self.clock.advance(0.05)
        self.assertEqual([c[0] for c in self.calls], [3, 4])

    def test_tickExceptionLoggedLoopContinues(self):
        """An exception in a tick is logged and the loop keeps ticking."""
        def boom(index, dt):
            raise RuntimeError("bad tick")

        self.loop.func = boom
        self.clock.advance(0.1)
        self.loop.func = lambda i, dt: self.calls.append((i,))
        self.clock.advance(0.1)
        self.assertEqual(self.calls, [(2,)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_stop(self):
        """A stopped loop runs no more ticks."""
        self.clock.advance(0.1)
        self.loop.stop()
        self.clock.advance(1.0)
        self.assertEqual(len(self.calls), 1)
        self.assertFalse(self.loop.running)
