"""Property tests: random bytes and random msgpack values never crash the server."""

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from mmoshard.wire.errors import CODES
from mmoshard.wire.framing import frame
from mmoshard.wire.test.helpers import Server

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
types = st.sampled_from(
    ["hello", "resume", "ping", "pong", "bye", "welcome", "error", "server.shutdown",
     "fuzz.echo", "fuzz.async", "fuzz.nothing", ""]
) | st.text(max_size=12)
fieldNames = st.sampled_from(
    ["id", "token", "client_version", "platform", "resume_token", "last_seq", "n", "seq"]
) | st.text(max_size=6)
messages = st.builds(
    lambda t, fields: {**fields, "t": t},
    types,
    st.dictionaries(fieldNames, values, max_size=5),
)
anything = messages | values


class FuzzTests(TestCase):
    def setUp(self):
        self.server = Server(self, max_frame=4096, max_per_ip=10**6)
        self.server.clock.advance(100)

        async def later(session, message):
            return {"got": message.get("x")}

        self.server.manager.addHandlers("fuzz", {
            "fuzz.echo": lambda session, message: dict(message),
            "fuzz.async": later,
        })

    def check(self, peer, canProbe):
        """Closed with a typed error, or still answering."""
        replies = peer.received()
        for reply in replies:
            self.assertIsInstance(reply.get("t"), str)
            if reply["t"] == "error":
                self.assertIn(reply["code"], CODES)
        if peer.closed:
            # A typed error, or the answer to a logout.
            self.assertTrue(replies, "closed without a word")
            self.assertIn(replies[-1]["t"], ("error", "bye"))
        elif canProbe:
            peer.send({"t": "ping", "id": "probe"})
            after = peer.received()
            self.assertIn({"t": "pong", "id": "probe"}, after)
        peer.lose()

    @FUZZ
    @given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4))
    def test_randomBytesBeforeHello(self, chunks):
        """Random bytes before hello get a typed error and a close, or nothing, never a crash."""
        peer = self.server.tcp()
        for chunk in chunks:
            peer.sendBytes(chunk)
        self.check(peer, canProbe=False)

    @FUZZ
    @given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4))
    def test_randomFramesInSession(self, payloads):
        """
        Random frame payloads in a session get typed errors or a close, and a surviving
        connection still answers pings.
        """
        peer = self.server.welcomed()
        for payload in payloads:
            peer.sendBytes(frame(payload))
        self.check(peer, canProbe=True)

    @FUZZ
    @given(st.lists(anything, min_size=1, max_size=4))
    def test_randomValuesBeforeHello(self, items):
        """Random msgpack values before hello get typed errors or a close, never a crash."""
        peer = self.server.tcp()
        for item in items:
            peer.sendBytes(frame(msgpack.packb(item, use_bin_type=True)))
        self.check(peer, canProbe=True)

    @FUZZ
    @given(st.lists(anything, min_size=1, max_size=4))
    def test_randomValuesInSession(self, items):
        """
        Random msgpack values and messages in a session get typed errors or a close, and a
        surviving connection still answers pings.
        """
        peer = self.server.welcomed()
        for item in items:
            peer.sendBytes(frame(msgpack.packb(item, use_bin_type=True)))
        self.check(peer, canProbe=True)

    @FUZZ
    @given(st.lists(anything, min_size=1, max_size=3))
    def test_randomValuesOverWebSocket(self, items):
        """
        Random msgpack values over WebSocket get typed errors or a close, and a surviving
        connection still answers pings.
        """
        peer = self.server.welcomed(transport="ws")
        for item in items:
            peer.protocol.onMessage(msgpack.packb(item, use_bin_type=True), True)
        self.check(peer, canProbe=True)
