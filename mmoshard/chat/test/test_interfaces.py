"""Every chat provider of a documented interface, test fakes included, passes verifyObject."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from mmoshard.chat.config import ChatConfig
from mmoshard.chat.moderation import IChatFilter, WordFilter, loadFilter
from mmoshard.chat.test.harness import FakeRouter, FakeSession, Process
from mmoshard.interfaces import (
    IMessageRouter,
    IParties,
    ISession,
    ISessionListener,
    IZoneChannels,
)
from mmoshard.store.memory import MemoryStore


class ProvidersTests(SynchronousTestCase):
    def setUp(self):
        clock = Clock()
        self.process = Process("verify", None, MemoryStore(clock), clock)

    def test_chat_service_parts(self):
        """The chat service is an ISessionListener; its parties and channels the IParties and IZoneChannels the plugin provides."""
        chat = self.process.chat
        self.assertTrue(verifyObject(ISessionListener, chat))
        self.assertTrue(verifyObject(IParties, chat.parties))
        self.assertTrue(verifyObject(IZoneChannels, chat.channels))

    def test_filters(self):
        """The built-in word filter, as configured or built directly, is an IChatFilter."""
        self.assertTrue(verifyObject(IChatFilter, WordFilter(("darn",))))
        self.assertTrue(verifyObject(IChatFilter, loadFilter(ChatConfig())))
        self.assertTrue(verifyObject(IChatFilter, self.process.chat.gate.chatFilter))

    def test_fakes(self):
        """The test router and session provide the interfaces they stand in for."""
        self.assertTrue(verifyObject(IMessageRouter, FakeRouter()))
        self.assertTrue(verifyObject(ISession, FakeSession(1)))
