"""Prometheus metrics of the session protocol, with plain counters on the hot path."""

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

RTT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TransportStats:
    """
    Message and byte counts of one transport, by message type.  Plain dicts
    updated inline: a prometheus Counter takes a lock per increment, which
    the per-message path cannot afford.
    """

    __slots__ = ("name", "messagesIn", "bytesIn", "messagesOut", "bytesOut")

    def __init__(self, name):
        self.name = name
        self.messagesIn = {}
        self.bytesIn = {}
        self.messagesOut = {}
        self.bytesOut = {}


class _TrafficCollector:
    """Exports every L{TransportStats} at scrape time."""

    def __init__(self, transports):
        self.transports = transports

    def describe(self):
        return []

    def collect(self):
        families = [
            ("mmoshard_session_messages_in", "Messages received, by type", "messagesIn"),
            ("mmoshard_session_bytes_in", "Payload bytes received, by type", "bytesIn"),
            ("mmoshard_session_messages_out", "Messages sent, by type", "messagesOut"),
            ("mmoshard_session_bytes_out", "Payload bytes sent, by type", "bytesOut"),
        ]
        for name, doc, attr in families:
            family = CounterMetricFamily(name, doc, labels=["transport", "type"])
            for stats in self.transports.values():
                for kind, value in list(getattr(stats, attr).items()):
                    family.add_metric([stats.name, kind], value)
            yield family


def counterTotal(counter):
    """@return: the sum of a prometheus Counter's children (every label value)."""
    return sum(sample.value for metric in counter.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


class SessionMetrics:
    """Every session-protocol metric, registered on the node's registry."""

    def __init__(self, registry):
        self.transports = {}
        registry.register(_TrafficCollector(self.transports))
        self.connections = Gauge(
            "mmoshard_session_connections",
            "Open connections",
            ["transport"],
            registry=registry,
        )
        self.accepted = Counter(
            "mmoshard_session_connections_accepted",
            "Connections accepted",
            ["transport"],
            registry=registry,
        )
        self.errors = Counter(
            "mmoshard_session_errors", "Errors sent, by code", ["code"], registry=registry
        )
        self.rtt = Histogram(
            "mmoshard_session_rtt_seconds",
            "Heartbeat round-trip time",
            ["transport"],
            buckets=RTT_BUCKETS,
            registry=registry,
        )
        self.sessions = Gauge("mmoshard_sessions", "Live sessions", registry=registry)
        self.linkDead = Gauge(
            "mmoshard_session_link_dead",
            "Sessions whose connection dropped, waiting for a resume",
            registry=registry,
        )

    def forTransport(self, name):
        """@return: the L{TransportStats} of transport C{name}."""
        stats = self.transports.get(name)
        if stats is None:
            stats = self.transports[name] = TransportStats(name)
        return stats
