"""Batched direct writes to TCP sockets: one send per connection per reactor round, without Twisted's epoll round trip."""

from mmoshard.twistedcompat import canSendNow, supportsDirectWrite

# Twisted's FileDescriptor.write only queues: it registers the socket for
# writability (one epoll_ctl), the reactor wakes, sends, and unregisters it (a
# second epoll_ctl).  A world tick writes one update to every client, so that
# machinery costs more than the send itself.
#
# A WriteBatch keeps what connections write during one reactor round and
# sends it in one pass when the round ends (a callLater(0)), back to back as
# the reactor would but without the registrations, one send per connection
# however many messages it got.  Sending inside the tick instead, between the
# computations of two clients' updates, woke the receivers one by one and made
# the tick itself longer; the pass keeps the burst shape of Twisted's own
# writes.  Whatever the socket does not take, and everything written while
# Twisted still holds unsent data, goes through transport.write, so ordering,
# back-pressure (the registered producer) and error handling stay Twisted's.


class WriteBatch:
    """The connections with data waiting for the end of this reactor round."""

    def __init__(self, clock):
        self._clock = clock
        self._writers = []
        self._call = None

    def add(self, writer):
        self._writers.append(writer)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)

    def flush(self):
        """Send everything waiting now."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        writers, self._writers = self._writers, []
        for w in writers:
            w.flush()


def directWriter(transport, batch, enabled=True):
    """
    @param batch: the process's L{WriteBatch}.
    @return: a writer with C{write(data)}, C{flush()} and C{discard()}: a
        batched direct writer for a plain (non-TLS) TCP connection of
        Twisted's socket reactors, else one that calls C{transport.write}.
    """
    if enabled and supportsDirectWrite(transport):
        return _DirectWriter(transport, batch)
    return _TransportWriter(transport)


class _TransportWriter:
    __slots__ = ("write",)

    def __init__(self, transport):
        self.write = transport.write

    def flush(self):
        pass

    def discard(self):
        pass


class _DirectWriter:
    __slots__ = ("transport", "_send", "_batch", "_pending")

    def __init__(self, transport, batch):
        self.transport = transport
        self._send = transport.socket.send
        self._batch = batch
        self._pending = None

    def write(self, data):
        pending = self._pending
        if pending is not None:
            pending.append(data)
            return
        t = self.transport
        if not canSendNow(t):
            t.write(data)
            return
        self._pending = [data]
        self._batch.add(self)

    def discard(self):
        """Forget what waits (the connection is being aborted)."""
        self._pending = None

    def flush(self):
        """Send what waits; call before closing so nothing is left behind."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        t = self.transport
        if canSendNow(t):
            sendNow(t, self._send, data)
        else:
            t.write(data)


def sendNow(transport, send, data):
    """
    Send C{data} with C{send} (the socket's) on a TCP C{transport} holding
    nothing unsent; what the socket does not take goes through
    C{transport.write}.
    """
    try:
        sent = send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # A reset or closed peer: queue it and let the reactor's own write
        # find the error and close the connection its usual way.
        transport.write(data)
        return
    if sent < len(data):
        transport.write(data[sent:])
