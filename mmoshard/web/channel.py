"""The JSON sites' HTTP channel: an answer goes to the socket at once, headers and body in one send(), while Twisted has nothing queued."""

from twisted.web import http
from twisted.web.http_headers import Headers

from mmoshard.twistedcompat import canSendNow, httpChannelProtocol, supportsDirectWrite
from mmoshard.wire.direct import sendNow

# Twisted's transport.write only queues: it registers the socket for
# writability (one epoll_ctl), the reactor wakes, sends, and unregisters (a
# second epoll_ctl) -- per answer, and twisted.web writes an answer's
# headers and body separately.  When nothing is queued, sending at once is
# what the reactor would do a moment later anyway; whatever the socket does
# not take goes through transport.write, so ordering, back-pressure and
# error handling stay Twisted's.


class DirectHTTPChannel(http.HTTPChannel):
    """
    An L{http.HTTPChannel} writing straight to a plain TCP socket when
    nothing is queued for it, and knowing its addresses once.  Between L{cork} and L{uncork} what the
    channel writes is gathered and sent as one piece (L{writeJSON} corks
    around its one C{request.write}).
    """

    _corked = None
    _host = _peer = None

    # A connection's addresses never change; twisted.web asks for both with
    # every request (the host with a getsockname() system call).
    def getHost(self):
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self):
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def cork(self):
        if self._corked is None:
            self._corked = []

    def uncork(self):
        corked, self._corked = self._corked, None
        if corked:
            self._send(corked)

    def writeHeaders(self, version, code, reason, headers):
        if not isinstance(headers, Headers):
            # Twisted's compatibility path sanitises pairs; keep it, in order.
            self.uncork()
            return super().writeHeaders(version, code, reason, headers)
        out = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                out.extend((name, b": ", value, b"\r\n"))
        out.append(b"\r\n")
        self._write(out)

    def write(self, data):
        self._write([data])

    def writeSequence(self, iovec):
        self._write(list(iovec))

    def _write(self, parts):
        if self._corked is not None:
            self._corked.extend(parts)
        else:
            self._send(parts)

    def _send(self, parts):
        t = self.transport
        if not (supportsDirectWrite(t) and canSendNow(t)):
            t.writeSequence(parts)
            return
        sendNow(t, t.socket.send, b"".join(parts))


def directChannel():
    """A protocol factory for L{twisted.web.server.Site.protocol}."""
    return httpChannelProtocol(DirectHTTPChannel())
