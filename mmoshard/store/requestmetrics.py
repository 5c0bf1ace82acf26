"""Prometheus counters of the requests a node sends its volatile store (round trips, script calls by name), read from the store's public counts."""

from prometheus_client.core import CounterMetricFamily


class RequestCollector:
    """
    A collector of C{store.requests} and C{store.scriptCalls} (a
    L{mmoshard.store.redis.RedisStore} keeps them; a store without them is
    not counted): C{mmoshard_volatile_requests_total} and
    C{mmoshard_volatile_script_calls_total{script}}.
    """

    def __init__(self, store):
        self.store = store

    def collect(self):
        requests = CounterMetricFamily("mmoshard_volatile_requests",
                                       "commands sent to the volatile store (round trips)")
        requests.add_metric([], getattr(self.store, "requests", 0))
        yield requests
        scripts = CounterMetricFamily("mmoshard_volatile_script_calls",
                                      "script calls sent to the volatile store, by script",
                                      labels=["script"])
        for name, count in sorted(getattr(self.store, "scriptCalls", {}).items()):
            scripts.add_metric([name], count)
        yield scripts


def registerRequestMetrics(registry, store):
    """Count C{store}'s requests in C{registry} (when the store keeps counts)."""
    if hasattr(store, "requests"):
        registry.register(RequestCollector(store))
