"""The Twisted internals mmoshard relies on, all in this one module, each checked against the installed Twisted by mmoshard/test/test_twistedcompat.py."""

from twisted.internet import tcp
from twisted.web import http

# Nothing else in mmoshard may touch a private Twisted name: when a Twisted
# upgrade changes one of these, test_twistedcompat fails naming it, and this
# module is the only place to adapt.  setup.py pins the Twisted releases the
# test passed on.

# What a plain TCP connection (tcp.Connection, a FileDescriptor) holds while
# it has data Twisted has not sent yet: _tempDataLen counts what write()
# queued since the last doWrite, dataBuffer what doWrite did not send;
# _writeDisconnected is set once loseWriteConnection has taken effect.
DIRECT_WRITE_ATTRIBUTES = ("_tempDataLen", "dataBuffer", "socket", "TLS", "connected",
                           "disconnecting", "_writeDisconnected")


def supportsDirectWrite(transport):
    """@return: whether C{transport} is a TCP connection of Twisted's socket reactors whose send state L{canSendNow} can read."""
    return isinstance(transport, tcp.Connection) and all(
        hasattr(transport, name) for name in DIRECT_WRITE_ATTRIBUTES)


def canSendNow(t):
    """
    @param t: a transport L{supportsDirectWrite} accepted.
    @return: True when it is open, plain (no TLS) and holds nothing
        unsent, so bytes sent on its socket now go out in order.
    """
    return not (t._tempDataLen or t.dataBuffer or t.TLS or not t.connected
                or t.disconnecting or t._writeDisconnected)


def unsentBytes(t):
    """@return: how many bytes Twisted holds unsent for transport C{t} (one L{supportsDirectWrite} accepted)."""
    return t._tempDataLen + len(t.dataBuffer) - t.offset


def requestDisconnected(request):
    """
    @return: whether twisted.web's C{request} lost its connection
        (C{Request.connectionLost} sets C{_disconnected}; test doubles
        without it count as connected).
    """
    return getattr(request, "_disconnected", False)


def httpChannelProtocol(channel):
    """
    @param channel: an L{http.HTTPChannel}.
    @return: C{channel} wrapped as L{twisted.web.server.Site}'s default
        protocol wraps its own (the proxy that can switch to HTTP/2 after
        TLS ALPN), for use as C{Site.protocol}.
    """
    return http._GenericHTTPChannelProtocol(channel)
