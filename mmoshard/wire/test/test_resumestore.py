"""The replay-buffer write (ResumeStore's APPEND script) on every volatile store: memory, Redis and a Redis Cluster."""

from twisted.trial.unittest import TestCase

from mmoshard.store.slots import slotBatches
from mmoshard.store.test.fixtures import ClusterFixture, MemoryFixture, RedisFixture
from mmoshard.wire.resumestore import APPEND, bufferKey, recordKey


class AppendContract:
    """One APPEND call writes the buffers of several sessions, each only while its record is the caller's."""

    async def record(self, sid, node):
        await self.store.hset(recordKey(sid), {"node": node, "seq": "0"})

    async def append(self, node, writes):
        """Write C{writes} ({sid: (seq, drops, pairs)}) as ResumeStore.flush does, a call per slot."""
        out = {}
        for batch in slotBatches(self.store, list(writes), recordKey, 200):
            keys = [k for sid in batch for k in (recordKey(sid), bufferKey(sid))]
            args = [60000, node]
            for sid in batch:
                seq, drops, pairs = writes[sid]
                args += [seq, len(drops), *drops, len(pairs) // 2, *pairs]
            out.update(zip(batch, await self.store.evalScript(APPEND, keys, args)))
        return out

    async def test_manySessionsOneWrite(self):
        """
        Sessions of this node get their new events and seq; the buffer drops the fields
        named; a session another node took over is left as that node wrote it.
        """
        for sid in ("s1", "s2", "s3"):
            await self.record(sid, "node-a")
        await self.record("moved", "node-b")
        await self.store.hset(bufferKey("moved"), {"1": "theirs"})
        await self.store.hset(bufferKey("s2"), {"1": "old", "2": "kept"})
        out = await self.append("node-a", {
            "s1": (2, [], ["1", "a1", "2", "a2"]),
            "s2": (3, ["1"], ["3", "b3"]),
            "s3": (4, [], []),
            "moved": (9, ["1"], ["9", "mine"]),
        })
        self.assertEqual(out, {"s1": 1, "s2": 1, "s3": 1, "moved": 0})
        self.assertEqual(await self.store.hgetall(bufferKey("s1")), {"1": b"a1", "2": b"a2"})
        self.assertEqual(await self.store.hgetall(bufferKey("s2")), {"2": b"kept", "3": b"b3"})
        self.assertEqual(await self.store.hgetall(bufferKey("s3")), {})
        for sid, seq in (("s1", b"2"), ("s2", b"3"), ("s3", b"4")):
            self.assertEqual(await self.store.hget(recordKey(sid), "seq"), seq, sid)
        self.assertEqual(await self.store.hgetall(bufferKey("moved")), {"1": b"theirs"})
        self.assertEqual(await self.store.hget(recordKey("moved"), "seq"), b"0")

    async def test_recordsExpire(self):
        """A written session's record and buffer get the TTL (so a crashed node's garbage goes)."""
        await self.record("s1", "node-a")
        await self.append("node-a", {"s1": (1, [], ["1", "x"])})
        for key in (recordKey("s1"), bufferKey("s1")):
            ttl = await self.store.ttl(key)
            self.assertTrue(ttl is not None and 0 < ttl <= 60, (key, ttl))


class MemoryAppendTests(AppendContract, MemoryFixture, TestCase):
    pass


class RedisAppendTests(AppendContract, RedisFixture, TestCase):
    pass


class ClusterAppendTests(AppendContract, ClusterFixture, TestCase):
    pass
