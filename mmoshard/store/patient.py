"""PatientEndpoint: a client endpoint that retries failed connection attempts itself, with backoff and without a log line per attempt."""

import random

import attrs
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import deferLater
from zope.interface import implementer

__all__ = ["PatientEndpoint"]


@implementer(IStreamClientEndpoint)
@attrs.define(eq=False)
class PatientEndpoint:
    """
    Wraps a client endpoint: C{connect()} fires once a connection is made,
    however many attempts that takes, waiting C{initialDelay} seconds after
    the first failure and doubling up to C{maxDelay} (plus jitter, so the
    connections of many nodes do not come back in step).

    Why: L{twisted.application.internet.ClientService} logs a line for every
    failed attempt (five pool connections and the pub/sub one, each every
    two seconds, for as long as Redis is down).  Under this endpoint a
    ClientService sees no failed attempt, only a slow one; the store logs one
    line when Redis becomes unavailable and one when it answers again.
    Cancelling the Deferred (a ClientService being stopped) stops retrying.
    One PatientEndpoint may serve several connections at once.
    """

    reactor: IReactorTime
    endpoint: IStreamClientEndpoint
    initialDelay: float
    maxDelay: float
    # Failed attempts since the last success, and why the last one
    # failed (None after a success): what an error message can add to
    # "no answer" (a refused connection, a name that does not resolve).
    failures: int = attrs.field(init=False, default=0)
    lastError: str | None = attrs.field(init=False, default=None)

    def connect(self, protocolFactory):
        return Deferred.fromCoroutine(self._connect(protocolFactory))

    async def _connect(self, protocolFactory):
        delay = self.initialDelay
        while True:
            try:
                protocol = await self.endpoint.connect(protocolFactory)
            except (CancelledError, ConnectingCancelledError):
                # Our caller gave up (an endpoint reports the cancellation
                # of an attempt as ConnectingCancelledError): no retry.
                raise
            except Exception as e:
                self.failures += 1
                self.lastError = str(e) or type(e).__name__
                await deferLater(self.reactor, delay + random.random() * self.initialDelay,
                                 lambda: None)
                delay = min(delay * 2, self.maxDelay)
            else:
                self.failures = 0
                self.lastError = None
                return protocol
