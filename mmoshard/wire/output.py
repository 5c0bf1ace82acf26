"""Output of the session protocol: counting, back-pressure (the backlog of a paused connection) and the batched send of a world tick."""

from twisted.logger import Logger

from mmoshard.wire import errors
from mmoshard.wire.codec import encode
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.session import Session
from mmoshard.wire.states import CLOSED, CLOSING

_log = Logger()


def countOut(stats, kind, count, size):
    """Add C{count} messages of C{size} bytes in all, of type C{kind}, to the L{TransportStats} C{stats}."""
    counts = stats.messagesOut
    counts[kind] = counts.get(kind, 0) + count
    sizes = stats.bytesOut
    sizes[kind] = sizes.get(kind, 0) + size


class Backlog:
    """
    The output a paused connection could not write yet, in order, bounded:
    past C{limit} unsent bytes the connection is closed as a slow consumer
    rather than buffering without end.
    """

    __slots__ = ("conn", "limit", "payloads", "size")

    def __init__(self, conn, limit):
        self.conn = conn
        self.limit = limit
        self.payloads = []
        self.size = 0

    def add(self, payload):
        """Queue C{payload}; shed the connection when the backlog grows past the limit."""
        self.payloads.append(payload)
        self.size += len(payload)
        if self.size > self.limit and self.conn.state < CLOSING:
            self.shed()

    def flush(self):
        """Write what waits, in order, until the connection is paused again or gone."""
        conn = self.conn
        queued, self.payloads, self.size = self.payloads, [], 0
        write = conn.link.writeFrame
        for i, payload in enumerate(queued):
            if conn.paused or conn.state == CLOSED:
                # Paused again mid-flush: keep the rest, in order.
                self.payloads = queued[i:]
                self.size = sum(len(p) for p in self.payloads)
                return
            write(payload)

    def clear(self):
        """Forget what waits (the connection is being dropped)."""
        self.payloads = []
        self.size = 0

    def shed(self):
        """Close a peer that stopped reading: one typed error, written past the backlog."""
        conn = self.conn
        _log.info(
            "closing slow consumer {peer} of session {session_id} (account "
            "{account_id}): {queued} bytes unsent",
            peer=conn.peerHost,
            queued=self.size,
            **conn.logIds(),
        )
        # The backlog is dropped; replayable messages are still in the
        # session's buffer, so a resume can recover them.
        self.clear()
        info = ErrorInfo(errors.SLOW_CONSUMER, "too much unsent output; reconnect")
        conn.manager.metrics.errors.labels(info.code).inc()
        body = info.toBody()
        body["t"] = "error"
        # Straight to the transport: its buffer takes it even while paused.
        conn.link.writeFrame(encode(body))
        conn.close(info)


def sendEncodedMany(sends, kind):
    """
    C{session.sendEncoded(payload, kind)} for each C{(session, payload)} of
    C{sends}, with the per-message bookkeeping (two calls, the metrics) done
    once per run of sessions on one transport: a world tick sends one
    update to every player, thousands per tick.  It reads the connection's
    public hot-path attributes (state, paused, stats, link) directly, as
    L{mmoshard.wire.connection.Connection.sendEncoded} does.
    """
    stats = None
    count = size = 0
    for session, payload in sends:
        if type(session) is not Session:
            session.sendEncoded(payload, kind)
            continue
        conn = session.conn
        if conn is None or session.ended or conn.state == CLOSED:
            # Link-dead or gone: Session.sendEncoded would drop it too.
            continue
        if conn.paused:
            # Queued and counted by the connection itself.
            conn.sendEncoded(payload, kind)
            continue
        if conn.stats is not stats:
            if count:
                countOut(stats, kind, count, size)
            stats = conn.stats
            count = size = 0
        count += 1
        size += len(payload)
        conn.link.writeFrame(payload)
    if count:
        countOut(stats, kind, count, size)
