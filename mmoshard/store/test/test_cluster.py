"""The volatile-store and pub/sub contracts on a real three-node Redis Cluster, and what only a cluster does."""

from twisted.trial.unittest import TestCase

from mmoshard.store.test.fixtures import ClusterFixture
from mmoshard.store.test.test_pubsub import PubSubContract
from mmoshard.store.test.test_volatile import LifecycleContract, VolatileStoreContract


class ClusterLifecycleTests(LifecycleContract, ClusterFixture, TestCase):
    """Opening and closing a ClusterStore."""


class ClusterStoreContractTests(VolatileStoreContract, ClusterFixture, TestCase):
    """The contract on a real Redis Cluster, time passing for real."""


class ClusterPubSubTests(PubSubContract, ClusterFixture, TestCase):
    """Pub/sub on a real Redis Cluster."""
