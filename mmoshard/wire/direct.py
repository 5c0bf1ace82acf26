"""Writing to a TCP socket directly while Twisted has nothing queued for it, to skip the epoll round trip per write."""

from twisted.internet import tcp

# Twisted's FileDescriptor.write only queues: it registers the socket for
# writability (one epoll_ctl), the reactor wakes, sends, and unregisters (a
# second epoll_ctl).  A world tick writes one update to every client, so that
# machinery costs more than the send itself.  When nothing is queued, sending
# at once is what the reactor would do a moment later anyway; anything not
# sent goes through transport.write, so ordering, back-pressure (the
# producer) and error handling stay Twisted's.
_NEEDED = ("_tempDataLen", "dataBuffer", "socket", "TLS", "connected",
           "disconnecting", "_writeDisconnected")


def directWriter(transport, enabled=True):
    """
    @return: a C{write(data)} callable for C{transport}: a direct writer for
        a plain (non-TLS) TCP connection of Twisted's socket reactors, else
        C{transport.write}.
    """
    if (enabled and isinstance(transport, tcp.Connection)
            and all(hasattr(transport, a) for a in _NEEDED)):
        return _DirectWriter(transport).write
    return transport.write


class _DirectWriter:
    __slots__ = ("transport", "_send")

    def __init__(self, transport):
        self.transport = transport
        self._send = transport.socket.send

    def write(self, data):
        t = self.transport
        if (t._tempDataLen or t.dataBuffer or t.TLS or not t.connected
                or t.disconnecting or t._writeDisconnected):
            t.write(data)
            return
        try:
            sent = self._send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # A reset or closed peer: queue it and let the reactor's own
            # write find the error and close the connection its usual way.
            t.write(data)
            return
        if sent < len(data):
            t.write(data[sent:])
