"""A test case running world nodes as real twistd processes on the test MariaDB and Redis, with the test's own game data files."""

import os
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from mmoshard.testing import checkoutRoot, requireMySQL, requireRedis, startNodeProcess



def sleep(seconds):
    """@return: a Deferred firing after C{seconds} of real time."""
    return deferLater(reactor, seconds, lambda: None)


async def waitFor(predicate, timeout=10.0, step=0.05):
    """Poll C{predicate} every C{step} s until it is true; fail after C{timeout} s."""
    for _ in range(int(timeout / step)):
        if predicate():
            return
        await sleep(step)
    raise AssertionError("condition not reached in time")


class WorldProcessCase(TestCase):
    """
    Each test gets a migrated database (C{self.sql}, C{self.sqlURL}), a Redis
    key prefix (C{self.redisURL}, C{self.prefix}) and its C{dataFiles}
    written to a temporary directory (C{self.files}: name -> path);
    L{startWorld} starts a world node on them.

    @cvar key: the token key the nodes and the test's clients share.
    @cvar dataFiles: name (C{zones}, C{npcs}, ...) -> TOML text.
    """

    timeout = 60
    log = Logger()
    key = None
    dataFiles = {}

    async def _setUp(self):
        from mmoshard.store.sql import SQLStore, migrate

        self.sqlURL, dropper = requireMySQL()
        self.addCleanup(dropper)
        self.redisURL, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        self.sql = SQLStore(reactor, self.sqlURL, 1, 2)
        self.sql.open()
        self.addCleanup(self.sql.close)
        await migrate(self.sql)
        self.tmp = tempfile.mkdtemp()
        self.files = {}
        for name, text in self.dataFiles.items():
            path = self.files[name] = os.path.join(self.tmp, f"{name}.toml")
            with open(path, "w") as f:
                f.write(text)

    def setUp(self):
        return Deferred.fromCoroutine(self._setUp())

    async def startWorld(self, name="world-a", **world):
        """
        @return: a ready world node C{name} on the test's stores and data
            files (the shipped abilities and classes; C{instances_file} "" unless
            the test has one), with short leases and saves; C{world} adds to its
            C{[world]} table.
        """
        etc = os.path.join(checkoutRoot(), "etc")
        files = self.files
        return await startNodeProcess(self, reactor, os.path.join(self.tmp, f"{name}.toml"), {
            "node": {"id": name, "roles": ["world"], "var_dir": os.path.join(self.tmp, name)},
            "sql": {"url": self.sqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": self.key},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"one_session_per_account": False, "resume_grace": 1.0},
            "world": {
                "lease_ttl": 3.0, "lease_refresh": 1.0, "save_interval": 1.0,
                "zones_file": files["zones"], "npcs_file": files["npcs"],
                "items_file": files["items"],
                # Its own zones and NPCs: no shipped templates unless it brings its own.
                "instances_file": files.get("instances", ""),
                "abilities_file": os.path.join(etc, "abilities.toml"),
                "classes_file": os.path.join(etc, "classes.toml"),
                **world,
            },
        })
