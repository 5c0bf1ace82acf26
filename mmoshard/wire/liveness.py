"""Liveness of a session's connection: the server's heartbeat pings, round-trip times, and the client's pings."""

from twisted.logger import Logger

from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.states import OPEN

_log = Logger()


class Heartbeat:
    """
    Pings an attached connection every C{session.heartbeat} seconds and
    closes it once the peer has sent nothing for C{heartbeat_timeout}.
    """

    __slots__ = ("conn", "interval", "timeout", "seenReceived", "silentSince", "nonce",
                 "sentAt", "timer")

    def __init__(self, conn, config):
        self.conn = conn
        self.interval = config.heartbeat
        self.timeout = config.heartbeat_timeout
        self.seenReceived = conn.received
        self.silentSince = conn.seconds()
        self.nonce = 0
        self.sentAt = None
        self.timer = conn.clock.callLater(self.interval, self.beat)

    def stop(self):
        """The connection is gone: no more pings."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def beat(self):
        """Close a silent peer, else ping it and measure the reply."""
        self.timer = None
        conn = self.conn
        if conn.state != OPEN:
            return
        now = conn.seconds()
        # Counting frames instead of stamping each one keeps a clock read
        # off the per-message path; precision is one heartbeat.
        if conn.received != self.seenReceived:
            self.seenReceived = conn.received
            self.silentSince = now
        elif now - self.silentSince >= self.timeout:
            _log.info(
                "peer {peer} of session {session_id} (account {account_id}) silent "
                "for {silent:.1f}s, closing",
                peer=conn.peerHost,
                silent=now - self.silentSince,
                **conn.logIds(),
            )
            conn.fail(ErrorInfo(errors.HEARTBEAT_TIMEOUT, "no traffic from the client"))
            return
        self.nonce += 1
        self.sentAt = now
        conn.sendMessage({"t": "ping", "n": self.nonce})
        self.timer = conn.clock.callLater(self.interval, self.beat)

    def ponged(self, nonce):
        """
        The client answered ping C{nonce}.
        @return: the round-trip time in seconds, or None when it answers no
            outstanding ping.
        """
        sentAt = self.sentAt
        if sentAt is None or nonce != self.nonce:
            return None
        self.sentAt = None
        return self.conn.seconds() - sentAt


def ping(conn, message):
    """The client's ping: answer a pong with its nonce and request id."""
    reply = {"t": "pong"}
    if "n" in message:
        reply["n"] = message["n"]
    if "id" in message:
        reply["id"] = message["id"]
    conn.sendMessage(reply)


def pong(conn, message):
    """The answer to a heartbeat ping: record the round-trip time."""
    heartbeat = conn.heartbeat
    if heartbeat is None:
        return
    rtt = heartbeat.ponged(message.get("n"))
    if rtt is None:
        return
    if conn.session is not None:
        conn.session.rtt = rtt
    conn.manager.metrics.rtt.labels(conn.transport).observe(rtt)
