"""Tests for AsyncMultiService and AsyncService: ordered starts that may wait, reverse stops, failures, bounds."""

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.service import AsyncMultiService, AsyncService


class Step(Service):
    """A child whose start and stop wait on Deferreds the test fires."""

    def __init__(self, name, log, failStart=False, failStop=False):
        self.setName(name)
        self.log = log
        self.failStart = failStart
        self.failStop = failStop
        self.starting = None
        self.stopping = None

    def startService(self):
        super().startService()
        self.log.append(f"start {self.name}")
        if self.failStart:
            raise RuntimeError(f"{self.name} cannot start")
        self.starting = Deferred()
        return self.starting

    def stopService(self):
        super().stopService()
        self.log.append(f"stop {self.name}")
        if self.failStop:
            raise RuntimeError(f"{self.name} cannot stop")
        self.stopping = Deferred()
        return self.stopping


class Bounded(AsyncMultiService):
    """Bounds the stop of the child named "slow" on a Clock."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def stopTimeoutOf(self, child):
        return 5.0 if child.name == "slow" else None

    def stopClock(self):
        return self.clock


def tree(*children, parent=None):
    parent = AsyncMultiService() if parent is None else parent
    for child in children:
        child.setServiceParent(parent)
    return parent


class AsyncMultiServiceTests(TestCase):
    def test_children_start_one_after_another(self):
        """A child starts only once the previous child's start Deferred has fired; the tree's Deferred fires last."""
        log = []
        a, b = Step("a", log), Step("b", log)
        root = tree(a, b)
        started = root.startService()
        self.assertEqual(log, ["start a"])
        self.assertNoResult(started)
        a.starting.callback(None)
        self.assertEqual(log, ["start a", "start b"])
        self.assertNoResult(started)
        b.starting.callback(None)
        self.successResultOf(started)
        self.assertTrue(root.running and a.running and b.running)

    def test_children_stop_in_reverse_each_awaited(self):
        """Children stop last-first, each only after the later one's stop has finished."""
        log = []
        a, b = Step("a", log), Step("b", log)
        root = tree(a, b)
        root.startService()
        a.starting.callback(None)
        b.starting.callback(None)
        del log[:]
        stopped = root.stopService()
        self.assertEqual(log, ["stop b"])
        b.stopping.callback(None)
        self.assertEqual(log, ["stop b", "stop a"])
        self.assertNoResult(stopped)
        a.stopping.callback(None)
        self.successResultOf(stopped)
        self.assertFalse(root.running or a.running or b.running)

    def test_failed_start_leaves_later_children_unstarted(self):
        """A child that fails to start fails the tree's start; the children after it never start, and a stop skips them."""
        log = []
        a, bad, c = Step("a", log), Step("bad", log, failStart=True), Step("c", log)
        root = tree(a, bad, c)
        started = root.startService()
        a.starting.callback(None)
        self.failureResultOf(started, RuntimeError)
        self.assertEqual(log, ["start a", "start bad"])
        self.assertFalse(c.running)
        root.stopService()
        self.assertEqual(log[2:], ["stop bad"])

    def test_failed_stop_still_stops_the_others(self):
        """A child failing to stop is logged and the children before it still stop."""
        log = []
        a, bad = Step("a", log), Step("bad", log, failStop=True)
        root = tree(a, bad)
        root.startService()
        a.starting.callback(None)
        bad.starting.callback(None)
        stopped = root.stopService()
        a.stopping.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(log[-2:], ["stop bad", "stop a"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_stop_bound_by_timeout(self):
        """A child given a stop bound is abandoned after it, and the children before it stop."""
        log = []
        clock = Clock()
        a, slow = Step("a", log), Step("slow", log)
        root = tree(a, slow, parent=Bounded(clock))
        root.startService()
        a.starting.callback(None)
        slow.starting.callback(None)
        stopped = root.stopService()
        self.assertEqual(log[-1], "stop slow")
        clock.advance(5.0)
        self.assertEqual(log[-1], "stop a")
        a.stopping.callback(None)
        self.successResultOf(stopped)

    def test_stopped_while_starting(self):
        """A tree stopped while a child is still starting starts none of the later children."""
        log = []
        a, b = Step("a", log), Step("b", log)
        root = tree(a, b)
        root.startService()
        root.stopService()
        a.starting.callback(None)
        self.assertNotIn("start b", log)


class AsyncServiceTests(TestCase):
    def test_coroutines_drive_start_and_stop(self):
        """startService and stopService return the Deferreds of the start() and stop() coroutines."""
        events = []
        gate = Deferred()

        class Part(AsyncService):
            async def start(self):
                events.append("starting")
                await gate
                events.append("started")

            async def stop(self):
                events.append("stopped")

        part = Part()
        d = part.startService()
        self.assertTrue(part.running)
        self.assertNoResult(d)
        gate.callback(None)
        self.successResultOf(d)
        self.successResultOf(part.stopService())
        self.assertEqual(events, ["starting", "started", "stopped"])
        self.assertFalse(part.running)
