"""The store fakes other packages' tests stand on keep to the store interfaces."""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import ISQLStore


class FakeStoreTests(SynchronousTestCase):
    """Every test fake providing a store interface, checked against it."""

    def test_worldSyncSQL(self):
        """The world tests' SyncSQL, a Clock-friendly SQLite store, provides ISQLStore."""
        from mmoshard.world.test.harness import SyncSQL

        store = SyncSQL()
        self.assertTrue(verifyObject(ISQLStore, store))
        self.assertIsNone(store.open())
        self.assertEqual(self.successResultOf(store.runQuery("SELECT 1")), [(1,)])
