"""Test helpers for chat: fake sessions and router, and chat processes sharing stores."""

import itertools
import types

from prometheus_client import CollectorRegistry
from twisted.internet.defer import maybeDeferred
from zope.interface import implementer

from mmoshard.chat.config import ChatConfig
from mmoshard.chat.service import ChatService
from mmoshard.interfaces import IMessageRouter, ISession
from mmoshard.locator import StoreLocator
from mmoshard.wire.codec import decode
from mmoshard.wire.errors import ProtocolError

_ids = itertools.count(1)


@implementer(ISession)
class FakeSession:
    """A session that records what it is sent."""

    def __init__(self, accountId, operator=False):
        self.sessionId = f"s{next(_ids)}"
        self.accountId = accountId
        self.claims = types.SimpleNamespace(
            account_id=accountId, has=lambda flag: operator and flag == "operator"
        )
        self.linkDead = False
        self.ended = False
        self.sent = []
        self.closed = None

    def send(self, type, body, replayable=True):
        message = dict(body)
        message["t"] = type
        self.sent.append(message)

    def sendEncoded(self, payload, type):
        message = decode(payload)
        assert message["t"] == type
        self.sent.append(message)

    def close(self, code=None, message=None):
        self.closed = code

    def events(self, type):
        return [m for m in self.sent if m["t"] == type]


@implementer(IMessageRouter)
class FakeRouter:
    """An L{IMessageRouter} keeping what a role registers, for L{Client} to call."""

    def __init__(self):
        self.handlers = {}
        self.listeners = []

    def addHandlers(self, namespace, handlers):
        self.handlers.update(handlers)

    def addListener(self, listener):
        self.listeners.append(listener)


class Client:
    """A character's session on one chat process, calling handlers like the wire would."""

    def __init__(self, process, session, cid, name):
        self.process = process
        self.session = session
        self.cid = cid
        self.name = name

    async def call(self, type, **body):
        body["t"] = type
        handler = self.process.router.handlers[type]
        return await maybeDeferred(handler, self.session, body)

    async def fails(self, type, **body):
        """@return: the error code the request fails with."""
        try:
            result = await self.call(type, **body)
        except ProtocolError as e:
            return e.info.code
        raise AssertionError(f"{type} succeeded with {result!r}")

    def events(self, type):
        return self.session.events(type)

    def linkDead(self):
        self.session.linkDead = True
        return self.process.chat.sessionLinkDead(self.session)

    def resume(self):
        self.session.linkDead = False
        return self.process.chat.sessionResumed(self.session)

    def end(self, reason="logout"):
        return self.process.chat.sessionEnded(self.session, reason)


class Process:
    """One chat process: its ChatService, given a fake router and the shared stores."""

    def __init__(self, nodeId, sql, volatile, clock, config=None, resumeGrace=30.0):
        self.nodeId = nodeId
        self.sql = sql
        self.volatile = volatile
        self.router = FakeRouter()
        # The node's locator (not refreshing: tests do not outlive its TTL).
        self.locator = StoreLocator(volatile, clock, nodeId, 300.0)
        self.chat = ChatService(
            config or ChatConfig(), clock, nodeId, CollectorRegistry(),
            sql=sql, volatile=volatile, router=self.router, resumeGrace=resumeGrace,
            locator=self.locator,
        )

    async def start(self):
        await self.chat.startService()

    async def stop(self):
        await self.chat.stopService()

    async def connect(self, character, status="online"):
        cid, accountId, name = character
        session = FakeSession(accountId, operator=name.lower().startswith("op"))
        client = Client(self, session, cid, name)
        await client.call("chat.hello", character_id=cid, status=status)
        return client
