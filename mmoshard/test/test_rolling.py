"""A rolling restart of a shard of real twistd nodes (two of each of world, chat and matchmaking) on MariaDB and Redis, with bots playing throughout."""

import tempfile

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from mmoshard.bots.rolling import TARGETS, Options, RollingRun, verdict
from mmoshard.bots.rollingcluster import RollingCluster, prepareStores

KEY = "rolling-test-key-0123456789abcdef"


class RollingRestartTests(TestCase):
    """Twenty bots in four parties of five, five of them hunting wolves; every node restarted in turn."""

    timeout = 240

    async def test_rollingRestartLosesNothing(self):
        """
        Each node stopped with SIGTERM (exit 0) and started again while 20 bots play: no
        session ends, no bot's world.u stream pauses over 2 s, no whisper, party message or
        matchmaking ticket is lost or delivered twice, nothing is granted twice, and players
        link-dead when their world node drains still get their transfer.
        """
        sqlURL, redisURL, prefix, cleanups = await prepareStores(reactor, 20)
        for cleanup in cleanups:
            self.addCleanup(cleanup)
        cluster = RollingCluster(reactor, tempfile.mkdtemp(prefix="mmoshard-rolling-"), sqlURL,
                                 redisURL, prefix, KEY)
        self.addCleanup(cluster.kill)
        await cluster.start()
        run = RollingRun(reactor, cluster, sqlURL, KEY,
                         Options(bots=20, warmup=4.0, pause=1.5, settle=4.0, droppers=2))
        figures = await run.run()
        await cluster.stop()
        summary = " ".join(f"{k}={v}" for k, v in figures.items())
        self.assertEqual(verdict(figures), [], summary)
        self.assertEqual([r.exit_code for r in run.restarts], [0] * 6, summary)
        # What was counted happened: the run did exercise each target.
        self.assertGreater(figures["whispers"], 100, summary)
        self.assertGreater(figures["party_deliveries"], 100, summary)
        self.assertGreater(figures["matches"], 4, summary)
        self.assertGreater(figures["exp_grants"], 0, summary)
        self.assertEqual(figures["linkdead"], 4, summary)
        self.assertEqual(set(TARGETS) - set(figures), set(), summary)
