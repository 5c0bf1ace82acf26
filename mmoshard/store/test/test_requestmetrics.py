"""The volatile store's request counts on a node's /metrics: commands sent (round trips) and script calls by name, on real Redis."""

from prometheus_client import CollectorRegistry
from twisted.trial.unittest import TestCase

from mmoshard.store.common import Script
from mmoshard.store.requestmetrics import registerRequestMetrics
from mmoshard.store.test.fixtures import RedisFixture

ECHO = Script(name="echo_test", lua="return ARGV[1]", python=lambda view, keys, args: args[0])


class RequestMetricsTests(RedisFixture, TestCase):

    async def test_requestsAndScriptsCounted(self):
        """Each command and each script call the store sends is counted once, scripts by name (what M1's round trips per match read)."""
        registry = CollectorRegistry()
        registerRequestMetrics(registry, self.store)
        before = registry.get_sample_value("mmoshard_volatile_requests_total")
        await self.store.set("k", "v")
        await self.store.get("k")
        for _ in range(3):
            await self.store.evalScript(ECHO, ["k"], ["x"])
        sent = registry.get_sample_value("mmoshard_volatile_requests_total") - before
        self.assertIn(sent, (5.0, 6.0))  # one more EVAL when Redis had not cached the script
        self.assertEqual(registry.get_sample_value("mmoshard_volatile_script_calls_total",
                                                   {"script": "echo_test"}), 3.0)

    def test_storeWithoutCountsNotRegistered(self):
        """A store that keeps no counts (memory) adds no metric."""
        registry = CollectorRegistry()
        registerRequestMetrics(registry, object())
        self.assertIsNone(registry.get_sample_value("mmoshard_volatile_requests_total"))
