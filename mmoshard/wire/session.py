"""Sessions: what outlives a connection for the resume grace period, with its replay buffer."""

import collections
import hmac
import itertools
import secrets

from zope.interface import implementer

from mmoshard.interfaces import ISession
from mmoshard.wire.codec import encode
from mmoshard.wire.errors import ErrorInfo


@implementer(ISession)
class Session:
    """
    One client's session: outlives its connection for the resume grace
    period and keeps the replayable messages it was sent.
    """

    __slots__ = (
        "manager", "sessionId", "claims", "accountId", "clientVersion", "platform", "conn",
        "linkDead", "ended", "seq", "rtt", "graceTimer", "resumeSecret",
        "flushedSeq", "resumeStore", "_replayPayloads", "_replayTypes", "__weakref__",
    )

    def __init__(self, manager, sessionId, claims, clientVersion, platform, bufferSize):
        self.manager = manager
        self.sessionId = sessionId
        self.claims = claims
        self.accountId = claims.account_id
        self.clientVersion = clientVersion
        self.platform = platform
        self.conn = None
        self.linkDead = False
        self.ended = False
        self.seq = 0
        self.rtt = None
        self.graceTimer = None
        self.resumeSecret = secrets.token_urlsafe(24)
        # The L{ResumeStore} keeping the replay buffer in the volatile store
        # (None: this node only), and the last seq written there.
        self.resumeStore = None
        self.flushedSeq = 0
        # The last messages sent, encoded, so a replay costs no re-encoding.
        # Two deques of bytes and str rather than one of tuples: neither is
        # tracked by the garbage collector, so thousands of full buffers add
        # nothing to a full collection.  Sequence numbers are implicit: the
        # newest entry is self.seq.
        self._replayPayloads = collections.deque(maxlen=bufferSize)
        self._replayTypes = collections.deque(maxlen=bufferSize)

    def __repr__(self):
        return f"<Session {self.sessionId} account={self.accountId}>"

    @property
    def resumeToken(self):
        return f"{self.sessionId}.{self.resumeSecret}"

    def rotateResumeToken(self):
        self.resumeSecret = secrets.token_urlsafe(24)

    def matchesResumeSecret(self, secret):
        return hmac.compare_digest(self.resumeSecret.encode(), secret.encode())

    def send(self, type, body, replayable=True):
        if self.ended:
            return
        message = dict(body)
        message["t"] = type
        if replayable:
            self.seq = seq = self.seq + 1
            message["seq"] = seq
            payload = encode(message)
            self._replayPayloads.append(payload)
            self._replayTypes.append(type)
            if self.resumeStore is not None:
                self.resumeStore.mark(self)
        else:
            payload = encode(message)
        conn = self.conn
        if conn is not None:
            conn.sendEncoded(payload, type)

    def sendEncoded(self, payload, type):
        if self.ended:
            return
        conn = self.conn
        if conn is not None:
            conn.sendEncoded(payload, type)

    def replayAfter(self, lastSeq):
        """
        @return: the (payload, type) pairs sent after C{lastSeq}, or None
            when some of them are no longer buffered.
        """
        if lastSeq >= self.seq:
            return []
        payloads = self._replayPayloads
        oldest = self.seq - len(payloads) + 1
        if lastSeq + 1 < oldest:
            return None
        skip = lastSeq + 1 - oldest
        return list(
            zip(
                itertools.islice(payloads, skip, None),
                itertools.islice(self._replayTypes, skip, None),
            )
        )

    def unflushed(self, after):
        """@return: the (seq, payload) of buffered events after C{after}."""
        payloads = self._replayPayloads
        oldest = self.seq - len(payloads) + 1
        skip = max(0, after + 1 - oldest)
        return list(zip(range(oldest + skip, self.seq + 1), itertools.islice(payloads, skip, None)))

    def restore(self, seq, buffered, types):
        """
        Continue a session another node held: its last C{seq} and the
        C{(seq, payload)} events it kept (C{types} gives each one's type).
        """
        self.seq = self.flushedSeq = seq
        self._replayPayloads.clear()
        self._replayTypes.clear()
        expected = seq - len(buffered) + 1
        for n, payload in buffered:
            if n != expected:
                # A hole (a write lost in a crash): only what follows it replays.
                self._replayPayloads.clear()
                self._replayTypes.clear()
            expected = n + 1
            self._replayPayloads.append(payload)
            self._replayTypes.append(types(payload))

    def close(self, code=None, message=None):
        self.manager.endSession(self, "closed", ErrorInfo(code, message or code) if code else None)
