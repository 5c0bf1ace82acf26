"""The chat role's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram


class ChatMetrics:
    """Counters, gauges and the delivery latency histogram, on the node's registry."""

    def __init__(self, registry, onlineCount):
        self.online = Gauge(
            "mmoshard_chat_online_players",
            "Characters with a chat session on this process (incl. link-dead)",
            registry=registry,
        )
        self.online.set_function(onlineCount)
        self.messages = Counter(
            "mmoshard_chat_messages_total",
            "Chat messages accepted, by kind",
            ["kind"],
            registry=registry,
        )
        self.deliveries = Counter(
            "mmoshard_chat_deliveries_total",
            "Chat messages handed to a recipient's session on this process, by kind",
            ["kind"],
            registry=registry,
        )
        self.publishes = Counter(
            "mmoshard_chat_cross_process_publishes_total",
            "Publishes (batches of messages) to another chat process's inbox",
            registry=registry,
        )
        self.received = Counter(
            "mmoshard_chat_cross_process_received_total",
            "Messages received on this process's inbox",
            registry=registry,
        )
        self.refused = Counter(
            "mmoshard_chat_refused_total",
            "Chat requests refused, by error code",
            ["code"],
            registry=registry,
        )
        self.latency = Histogram(
            "mmoshard_chat_delivery_seconds",
            "Seconds from a message being accepted to its hand-over to a recipient session",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        self._deliveries = {}
        self._messages = {}

    def counted(self, kind):
        """Count one accepted message of C{kind}."""
        counter = self._messages.get(kind)
        if counter is None:
            counter = self._messages[kind] = self.messages.labels(kind)
        counter.inc()

    def delivered(self, kind, count, latency):
        counter = self._deliveries.get(kind)
        if counter is None:
            counter = self._deliveries[kind] = self.deliveries.labels(kind)
        counter.inc(count)
        if latency is not None:
            self.latency.observe(latency)
