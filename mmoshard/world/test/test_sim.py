"""Tests for the hand-encoded world update message."""

import msgpack
from twisted.trial.unittest import TestCase

from mmoshard.world.interest import movesMessage


class MovesMessageTests(TestCase):
    def test_same_bytes_as_msgpack(self):
        """The hand-built update is byte for byte what msgpack makes, across bin header sizes."""
        for n in (0, 20, 255, 256, 65535, 65536):
            m = bytes(i % 251 for i in range(n))
            self.assertEqual(movesMessage(m), msgpack.packb({"t": "world.u", "m": m}), n)
