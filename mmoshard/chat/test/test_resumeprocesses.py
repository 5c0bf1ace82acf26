"""Two real chat processes: kill -9 the node holding a link-dead session; it resumes on the other node."""

import os
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.chat.test.backends import NAMES, insertCharacters
from mmoshard.chat.test.test_processes import Player, until
from mmoshard.testing import TwistdProcess, freePort, sharedStores, writeConfig

TOKEN_KEY = "chat-resume-test-key-0123456789abcdef"


class ResumeOnAnotherNodeTests(TestCase):
    timeout = 120

    def spawn(self, nodeId):
        admin, tcp = freePort(), freePort()
        sections = {
            "node": {"id": nodeId, "roles": ["chat"], "var_dir": os.path.abspath(self.mktemp())},
            "sql": {"url": self.mysqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": TOKEN_KEY},
            "listen": {"admin": f"tcp:{admin}:interface=127.0.0.1",
                       "tcp": f"tcp:{tcp}:interface=127.0.0.1", "websocket": "", "http": ""},
            "session": {"resume_grace": 20.0},
            "chat": {"presence_ttl": 3.0},
        }
        path = writeConfig(os.path.abspath(self.mktemp()) + ".toml", sections)
        proc = TwistdProcess(reactor, path, admin).start()
        proc.address = f"127.0.0.1:{tcp}"
        self.addCleanup(proc.kill)
        return proc

    async def player(self, proc, name, **kwargs):
        from mmoshard.tokens import issueAccessToken, newLoginId
        from mmoshard.wire.client import connect

        cid, accountId, display = self.chars[name.lower()]
        token = issueAccessToken(TOKEN_KEY, accountId, newLoginId(), 600, time.time())
        client = await connect(reactor, proc.address, token, **kwargs)
        self.addCleanup(client.close)
        player = Player(client, cid, display)
        await player.request("chat.hello", character_id=cid)
        return player

    async def test_killedNodeSessionResumesElsewhere(self):
        """
        Alice's link drops, Bob whispers her, her node is killed with SIGKILL: her client
        resumes on the other node, gets the whisper exactly once, is online there without
        saying chat.hello again (Bob's next whisper reaches her), and Bob never sees her
        offline.
        """
        async def addCharacters(store):
            self.chars = await store.runInteraction(insertCharacters, NAMES, time.time())

        self.mysqlURL, self.redisURL, self.prefix = await sharedStores(self, reactor,
                                                                       addCharacters)
        one, two = self.spawn("chat-1"), self.spawn("chat-2")
        await one.waitReady()
        await two.waitReady()
        alice = await self.player(one, "alice", autoResume=False, alternates=[two.address])
        bob = await self.player(two, "bob")
        await alice.request("chat.friend.request", name="bob")
        await until(lambda: bob.of("chat.friend.requested"), what="friend request")
        await bob.request("chat.friend.accept", character_id=alice.cid)
        await until(lambda: alice.of("chat.friend.added"), what="friend added")

        alice.client.drop()
        await until(lambda: [e for e in bob.of("chat.presence") if e["state"] == "linkdead"],
                    what="link-dead presence")
        reply = await bob.request("chat.whisper", to="alice", text="while you were away")
        self.assertTrue(reply["delivered"])
        await deferLater(reactor, 0.3, lambda: None)  # past the store write of that turn
        one.kill()
        await one.ended

        before = len(alice.events)
        resumed = await alice.client.resume()
        self.assertIsNotNone(resumed, one.output.decode() + two.output.decode())
        self.assertTrue(resumed.get("moved"))
        self.assertEqual(alice.client.address.port, int(two.address.rpartition(":")[2]))
        await until(lambda: [e for e in alice.events[before:]
                             if e.get("text") == "while you were away"], what="replay")
        # No chat.hello: the character followed its session to the other node.
        await until(lambda: bob.of("chat.presence")[-1]["state"] == "online",
                    what="online again")
        reply = await bob.request("chat.whisper", to="alice", text="on the new node")
        self.assertTrue(reply["delivered"])
        await until(lambda: [e for e in alice.events if e.get("text") == "on the new node"],
                    what="whisper after the move")
        # Past the crashed node's presence TTL: still online, never offline.
        await deferLater(reactor, 4.0, lambda: None)
        whispers = [e for e in alice.events if e.get("text") == "while you were away"]
        self.assertEqual(len(whispers), 1)
        states = [e["state"] for e in bob.of("chat.presence") if e["character_id"] == alice.cid]
        self.assertNotIn("offline", states)
        listing = await bob.request("chat.friend.list")
        self.assertEqual(listing["friends"][0]["state"], "online")
        self.assertEqual(await two.stop(), 0, two.output.decode())
