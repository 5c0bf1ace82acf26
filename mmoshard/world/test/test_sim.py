"""Tests for the hand-encoded world update message."""

from twisted.trial.unittest import TestCase


class MovesMessageTests(TestCase):
    def test_same_bytes_as_msgpack(self):
        """The hand-built update is byte for byte what msgpack makes, across bin header sizes."""
        import msgpack
        from zope.interface.verify import verifyObject

        from mmoshard.interfaces import ISession
        from mmoshard.world.interest import movesMessage
        from mmoshard.world.test.helpers import FakeSession

        for n in (0, 20, 255, 256, 65535, 65536):
            m = bytes(i % 251 for i in range(n))
            self.assertEqual(movesMessage(m), msgpack.packb({"t": "world.u", "m": m}), n)
        verifyObject(ISession, FakeSession())
