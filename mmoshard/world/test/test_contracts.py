"""Every provider of an interface in the world role, test fakes included, checked with verifyObject."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import (
    IInterestSpace, IProgression, ISession, ISessionListener, ISQLStore, IZoneChannels,
)
from mmoshard.world.interest import PySpace, loadNative
from mmoshard.world.progression import Progression
from mmoshard.world.test.harness import FakeChannels, SyncSQL, WorldHarness
from mmoshard.world.test.helpers import FakeSession, requireNative


class ProviderTests(TestCase):
    """The world's own providers."""

    def test_roleProvidesProgression(self):
        """The IProgression the world role provides to the node is a whole one."""
        h = WorldHarness(self)
        provided = h.node.lookup(IProgression)
        self.assertIs(provided, h.world.progression)
        verifyObject(IProgression, provided)

    def test_progression(self):
        """Progression, built on its own, provides IProgression."""
        verifyObject(IProgression, Progression(SyncSQL(), Clock()))

    def test_sessionListener(self):
        """
        The world's handlers, the listener the service registers with the router,
        provide ISessionListener.
        """
        h = WorldHarness(self)
        self.assertIn(h.world.handlers, h.manager.listeners)
        verifyObject(ISessionListener, h.world.handlers)

    def test_pythonInterestSpace(self):
        """PySpace provides IInterestSpace."""
        verifyObject(IInterestSpace, PySpace(600.0, 400.0, 50.0, 5.0))

    def test_nativeInterestSpace(self):
        """The C space provides IInterestSpace."""
        requireNative()
        Space = loadNative()[0]
        verifyObject(IInterestSpace, Space(600.0, 400.0, 50.0, 5.0))


class FakeTests(TestCase):
    """The fakes world tests stand on keep to the contracts they stand in for."""

    def test_syncSQL(self):
        """SyncSQL, the harness's synchronous SQLite, provides ISQLStore."""
        verifyObject(ISQLStore, SyncSQL())

    def test_fakeChannels(self):
        """FakeChannels, the recording zone chat, provides IZoneChannels."""
        verifyObject(IZoneChannels, FakeChannels())

    def test_fakeSession(self):
        """FakeSession, the recording session of zone tests, provides ISession."""
        verifyObject(ISession, FakeSession())
