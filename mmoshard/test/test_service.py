"""Tests for AsyncMultiService and AsyncService: ordered starts that may wait, reverse stops, failures, bounds."""

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.service import AsyncMultiService, AsyncService


@attrs.define(eq=False)
class Step(Service):
    """A child whose start and stop wait on Deferreds the test fires."""

    name: str
    log: list  # "start <name>" and "stop <name>", shared by the children of a test
    failStart: bool = False
    failStop: bool = False
    starting: Deferred | None = attrs.field(init=False, default=None)
    stopping: Deferred | None = attrs.field(init=False, default=None)

    def _begin(self, verb, fail):
        """Log C{verb} and fail, or @return: the Deferred the test fires to finish it."""
        self.log.append(f"{verb} {self.name}")
        if fail:
            raise RuntimeError(f"{self.name} cannot {verb}")
        return Deferred()

    def startService(self):
        super().startService()
        self.starting = self._begin("start", self.failStart)
        return self.starting

    def stopService(self):
        super().stopService()
        self.stopping = self._begin("stop", self.failStop)
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


def startedTree(*children, parent=None):
    """@return: L{tree}C{(*children)}, started, each child's start fired in turn."""
    root = tree(*children, parent=parent)
    root.startService()
    for child in children:
        child.starting.callback(None)
    return root


class AsyncMultiServiceTests(TestCase):
    def assertOneAtATime(self, whole, log, verb, children):
        """
        The C{verb} ("start" or "stop") of C{children} runs one at a time in
        that order: each begins (shows in C{log}) only once the one before
        has fired its Deferred, and C{whole} fires only after the last.
        """
        expected = [f"{verb} {child.name}" for child in children]
        for i, child in enumerate(children):
            self.assertEqual(log, expected[:i + 1])
            self.assertNoResult(whole)
            (child.starting if verb == "start" else child.stopping).callback(None)
        self.successResultOf(whole)

    def test_children_start_one_after_another(self):
        """A child starts only once the previous child's start Deferred has fired; the tree's Deferred fires last."""
        log = []
        a, b = Step("a", log), Step("b", log)
        root = tree(a, b)
        self.assertOneAtATime(root.startService(), log, "start", [a, b])
        self.assertTrue(root.running and a.running and b.running)

    def test_children_stop_in_reverse_each_awaited(self):
        """Children stop last-first, each only after the later one's stop has finished."""
        log = []
        a, b = Step("a", log), Step("b", log)
        root = startedTree(a, b)
        del log[:]
        self.assertOneAtATime(root.stopService(), log, "stop", [b, a])
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
        root = startedTree(a, bad)
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
        root = startedTree(a, slow, parent=Bounded(clock))
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
