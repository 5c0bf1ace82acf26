"""Tests for mmoshard.batching: items that arrive during a round trip share the next; random ids read in batches."""

import os

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.batching import Batcher, RandomHex, keyed


class Sender:
    """A send whose round trips the test answers by hand."""

    def __init__(self):
        self.calls = []

    async def __call__(self, items):
        d = Deferred()
        self.calls.append((list(items), d))
        return await d


class BatcherTests(TestCase):

    def submit(self, batcher, item):
        results = []
        Deferred.fromCoroutine(batcher.submit(item)).addBoth(results.append)
        return results

    def test_idleGoesAtOnceThenTheRestTogether(self):
        """The first item goes alone at once; those that arrive while it is out go in one call after it, each getting its own result."""
        send = Sender()
        batcher = Batcher(send, maxBatch=10, overlap=100)
        first = self.submit(batcher, 1)
        self.assertEqual([items for items, _ in send.calls], [[1]])
        later = [self.submit(batcher, i) for i in (2, 3, 4)]
        self.assertEqual(len(send.calls), 1)
        send.calls[0][1].callback(["one"])
        self.assertEqual(first, ["one"])
        self.assertEqual(send.calls[1][0], [2, 3, 4])
        send.calls[1][1].callback(["two", "three", "four"])
        self.assertEqual([r[0] for r in later], ["two", "three", "four"])

    def test_overlapAndBatchSize(self):
        """Past the overlap a second call goes out while the first is out; no call carries more than maxBatch items."""
        send = Sender()
        batcher = Batcher(send, maxBatch=3, overlap=2, maxInFlight=2)
        self.submit(batcher, 0)
        for i in range(1, 8):
            self.submit(batcher, i)
        # Two waiting start a second call at once; the rest wait for one to return.
        self.assertEqual([items for items, _ in send.calls], [[0], [1, 2]])
        send.calls[1][1].callback([None] * 2)
        self.assertEqual(send.calls[2][0], [3, 4, 5])
        send.calls[2][1].callback([None] * 3)
        self.assertEqual(send.calls[3][0], [6, 7])

    def test_failureReachesEveryItemOfItsBatchOnly(self):
        """A failed call fails each item it carried; the next batch still goes and succeeds."""
        send = Sender()
        batcher = Batcher(send, maxBatch=2, overlap=100)
        first = self.submit(batcher, 1)
        second = [self.submit(batcher, i) for i in (2, 3)]
        third = self.submit(batcher, 4)
        send.calls[0][1].errback(ValueError("down"))
        self.assertTrue(first[0].check(ValueError))
        send.calls[1][1].errback(ValueError("still down"))
        for results in second:
            self.assertTrue(results[0].check(ValueError))
        self.assertEqual(send.calls[2][0], [4])
        send.calls[2][1].callback(["ok"])
        self.assertEqual(third, ["ok"])

    def test_keyedReadsEachKeyOnceAndAnswersEveryItem(self):
        """keyed: a batch's distinct keys are read once, sorted; each item gets its key's value, or None when the read has none."""
        read = Sender()
        batcher = Batcher(keyed(read))
        first = self.submit(batcher, 5)
        later = [self.submit(batcher, k) for k in (5, 3, 1)]
        read.calls[0][1].callback({5: 50})
        self.assertEqual(first, [50])
        self.assertEqual(read.calls[1][0], [1, 3, 5])
        read.calls[1][1].callback({1: 10, 5: 50})
        self.assertEqual([r[0] for r in later], [50, None, 10])


class RandomHexTests(TestCase):
    def test_idsAreHexOfTheSizeAndDistinctAcrossReads(self):
        """Ids are 2*size hex digits, and thousands of them (many urandom reads) are all distinct."""
        ids = RandomHex(size=8, batch=16)
        made = [ids.next() for _ in range(5000)]
        self.assertEqual({len(i) for i in made}, {16})
        for i in made:
            int(i, 16)
        self.assertEqual(len(set(made)), len(made))

    def test_readsTheSystemOncePerBatch(self):
        """One os.urandom read serves C{batch} ids: 1,000 ids of a batch of 256 take 4 reads."""
        reads = []
        real = os.urandom

        def counting(n):
            reads.append(n)
            return real(n)

        self.patch(os, "urandom", counting)
        ids = RandomHex(size=4, batch=256)
        for _ in range(1000):
            ids.next()
        self.assertEqual(reads, [1024] * 4)
