"""The matchmaking role's Prometheus metrics, per queue."""

from prometheus_client import Counter, Gauge, Histogram

from mmoshard.matchmaking.data import ROLES

# Seconds: a ticket's wait and its time to match span a second to many minutes.
_WAIT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class MatchmakingMetrics:
    """
    Counters, gauges and histograms of one matchmaking node.  What the
    queue's lease holder measures (waiting tickets, proposals, matches,
    waits) is counted on the holder only, so summing over nodes counts each
    thing once; C{leases} says which node holds which queue.
    """

    def __init__(self, registry, onlineCount=None):
        self.online = Gauge(
            "mmoshard_mm_sessions", "Characters that said mm.hello on this node (incl. link-dead)",
            registry=registry)
        if onlineCount is not None:
            self.online.set_function(onlineCount)
        self.waiting = Gauge(
            "mmoshard_mm_tickets_waiting",
            "Members of waiting tickets by the roles they may play (a member counts once per "
            "role), per queue; set by the queue's lease holder", ["queue", "role"],
            registry=registry)
        self.waitingTickets = Gauge(
            "mmoshard_mm_tickets_waiting_total", "Waiting tickets per queue; set by its lease holder",
            ["queue"], registry=registry)
        self.oldest = Gauge(
            "mmoshard_mm_oldest_wait_seconds", "Wait of the oldest waiting ticket, per queue",
            ["queue"], registry=registry)
        self.leases = Gauge(
            "mmoshard_mm_lease_held", "1 when this node holds the queue's matching lease",
            ["queue"], registry=registry)
        self.queued = Counter(
            "mmoshard_mm_tickets_total", "Tickets admitted by this node, per queue", ["queue"],
            registry=registry)
        self.proposals = Counter(
            "mmoshard_mm_proposals_total", "Proposals (ready checks) started, per queue",
            ["queue"], registry=registry)
        self.declines = Counter(
            "mmoshard_mm_declines_total",
            "Ready checks that failed, per queue and why (declined, timeout, gone)",
            ["queue", "reason"], registry=registry)
        self.matches = Counter(
            "mmoshard_mm_matches_total", "Matches made (instance created, players told), per queue",
            ["queue"], registry=registry)
        self.removed = Counter(
            "mmoshard_mm_tickets_removed_total", "Tickets removed, per queue and reason",
            ["queue", "reason"], registry=registry)
        self.wait = Histogram(
            "mmoshard_mm_wait_seconds", "Seconds from a ticket's creation to its proposal, per queue",
            ["queue"], buckets=_WAIT_BUCKETS, registry=registry)
        self.timeToMatch = Histogram(
            "mmoshard_mm_time_to_match_seconds",
            "Seconds from a ticket's creation to mm.matched, per queue", ["queue"],
            buckets=_WAIT_BUCKETS, registry=registry)
        self.passSeconds = Histogram(
            "mmoshard_mm_pass_seconds", "Seconds one matching pass of a queue took", ["queue"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry)
        self.yielded = Counter(
            "mmoshard_mm_passes_yielded_total",
            "Passes that formed fewer matches to answer a burst of mm.queue first "
            "([matchmaking] admission_first), per queue", ["queue"], registry=registry)
        self.refused = Counter(
            "mmoshard_mm_refused_total", "mm.* requests refused, by error code", ["code"],
            registry=registry)
        self.events = Counter(
            "mmoshard_mm_events_total", "mm.* events handed to a session on this node, by type",
            ["type"], registry=registry)
        self.undelivered = Counter(
            "mmoshard_mm_events_undelivered_total",
            "mm.* events for characters with no matchmaking session anywhere", registry=registry)
        self.publishes = Counter(
            "mmoshard_mm_cross_node_publishes_total",
            "Publishes (batches of messages) to another matchmaking node's inbox", registry=registry)
        self.instanceFailures = Counter(
            "mmoshard_mm_instance_failures_total",
            "IInstances.create calls for accepted matches that failed, per queue and code",
            ["queue", "code"], registry=registry)

    def showStats(self, queue, stats):
        """Set the waiting gauges of C{queue} from the store's C{QueueStats}."""
        self.waitingTickets.labels(queue).set(stats.tickets)
        self.oldest.labels(queue).set(stats.oldest_wait)
        for role in ROLES:
            self.waiting.labels(queue, role).set(stats.roles.get(role, 0))

    def clearStats(self, queue):
        """This node no longer holds C{queue}: its waiting gauges go to 0 (the holder's count)."""
        self.waitingTickets.labels(queue).set(0)
        self.oldest.labels(queue).set(0)
        for role in ROLES:
            self.waiting.labels(queue, role).set(0)
