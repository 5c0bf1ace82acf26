"""LogThrottle, and the router and session dispatch using it: a client repeating what fails logs one line a minute and a count, not a line per request."""

import json

from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase

from mmoshard.logthrottle import OTHERS, LogThrottle
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.routes import Router, route
from mmoshard.wire.test.helpers import Server


class _Events:
    """Keeps the warnings and failures logged while installed."""

    def __init__(self, testCase):
        self.events = []
        globalLogPublisher.addObserver(self.observe)
        testCase.addCleanup(globalLogPublisher.removeObserver, self.observe)

    def observe(self, event):
        if "log_failure" in event or event.get("log_level") == LogLevel.warn:
            self.events.append(event)

    def summaries(self):
        return [(e["kind"], e["client"], e["count"]) for e in self.events if "count" in e]


class LogThrottleTests(TestCase):
    def test_first_per_period_then_a_count(self):
        """The first event per client and kind in a period is allowed; the rest are counted and summarised once the period is over."""
        events = _Events(self)
        clock = Clock()
        throttle = LogThrottle(clock.seconds, period=60)
        self.assertTrue(throttle.allow("internal", "10.0.0.1"))
        self.assertEqual([throttle.allow("internal", "10.0.0.1") for _ in range(5)], [False] * 5)
        self.assertTrue(throttle.allow("internal", "10.0.0.2"))
        self.assertTrue(throttle.allow("store", "10.0.0.1"))
        clock.advance(59)
        self.assertFalse(throttle.allow("internal", "10.0.0.2"))
        self.assertEqual(events.summaries(), [])
        clock.advance(1)
        self.assertTrue(throttle.allow("internal", "10.0.0.1"))
        self.assertEqual(events.summaries(), [("internal", "10.0.0.1", 5),
                                              ("internal", "10.0.0.2", 1)])

    def test_clients_bounded(self):
        """Past maxClients in a period, new clients share one count, so the table stays bounded."""
        events = _Events(self)
        clock = Clock()
        throttle = LogThrottle(clock.seconds, maxClients=3)
        allowed = [throttle.allow("internal", f"10.0.0.{n}") for n in range(10)]
        self.assertEqual(allowed, [True] * 4 + [False] * 6)
        throttle.flush()
        self.assertEqual(events.summaries(), [("internal", OTHERS, 6)])


class _Broken:
    @route("GET", "/broken", "a bug", auth=False)
    def broken(self, call):
        raise ZeroDivisionError("a bug")


class RouterThrottleTests(TestCase):
    def test_one_failure_logged_per_client_a_minute(self):
        """
        Ten requests from one client hitting a bug get ten 500s but one
        logged traceback; the next minute's first names the nine left out.
        (On main each logged its traceback.)
        """
        from twisted.internet.address import IPv4Address
        from twisted.web.test.requesthelper import DummyRequest

        events = _Events(self)
        clock = Clock()
        router = Router(_Broken(), ErrorCodes({}), logThrottle=LogThrottle(clock.seconds))

        def hit():
            request = DummyRequest([b"broken"])
            request.method = b"GET"
            request.client = IPv4Address("TCP", "192.168.1.1", 4321)
            return json.loads(router.render(request))["error"]["code"]

        self.assertEqual([hit() for _ in range(10)], ["internal"] * 10)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        clock.advance(60)
        hit()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(events.summaries(), [("ZeroDivisionError in GET /broken", "192.168.1.1", 9)])


class SessionThrottleTests(TestCase):
    def test_one_handler_failure_logged_per_client_a_minute(self):
        """A client sending a message whose handler fails gets internal each time, and one traceback is logged a minute, then a count; another bug is logged apart."""
        events = _Events(self)
        server = Server(self)
        server.manager.addHandlers("t", {"t.bug": lambda s, m: 1 / 0})
        peer = server.welcomed()
        for n in range(10):
            peer.send({"t": "t.bug", "id": n})
        self.assertEqual([r["code"] for r in peer.received()], ["internal"] * 10)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        server.clock.advance(61)
        peer.send({"t": "t.bug", "id": 10})
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(events.summaries(), [("ZeroDivisionError in t.bug", "10.0.0.1", 9)])
        server.manager.addHandlers("u", {"u.bug": lambda s, m: [][1]})
        peer.send({"t": "u.bug", "id": 11})
        self.assertEqual(len(self.flushLoggedErrors(IndexError)), 1)


class GuardThrottleTests(TestCase):
    def test_one_refusal_logged_per_client_a_minute(self):
        """
        A page repeating a refused request on the admin site gets its typed
        403 each time, and one warning a minute per client and code, then a
        count (on main each refusal logged a line).
        """
        from twisted.internet.address import IPv4Address
        from twisted.web.test.requesthelper import DummyRequest

        from mmoshard.web.guard import AdminGuard, GuardedRoot

        events = _Events(self)
        clock = Clock()
        root = GuardedRoot(AdminGuard(), logThrottle=LogThrottle(clock.seconds))

        def hit():
            request = DummyRequest([b"thing"])
            request.getHost = lambda: IPv4Address("TCP", "127.0.0.1", 9000)
            request.client = IPv4Address("TCP", "127.0.0.1", 5555)
            request.channel = None
            request.requestHeaders.setRawHeaders(b"host", [b"evil.example"])
            root.render(request)
            return json.loads(b"".join(request.written))["error"]["code"]

        self.assertEqual([hit() for _ in range(8)], ["request.bad_host"] * 8)
        refusals = [e for e in events.events if "code" in e and "count" not in e]
        self.assertEqual(len(refusals), 1)
        clock.advance(60)
        hit()
        self.assertEqual(events.summaries(), [("request.bad_host", "127.0.0.1", 7)])
