"""Hunters of the rolling-restart run (bots that kill wolves, so exp and loot are granted while nodes restart) and the SQL check that nothing was granted twice."""

import collections
import json
import math
import os

from twisted.internet.error import ConnectionLost

from mmoshard.bots.combat import Ability, Fighter, Kit
from mmoshard.bots.w2 import gameData
from mmoshard.testing import checkoutRoot
from mmoshard.wire.client import RequestError

RELEASE_AFTER = 2.0  # seconds a dead hunter lies before it releases


class Hunter:
    """
    A bot's fighting mind (L{mmoshard.bots.combat.Fighter}, W2's) driven
    through the bot's world client: every world.u feeds it, every step asks
    it what to do.
    """

    def __init__(self, cid, kit):
        self.fighter = Fighter(cid, kit)
        self.nextId = 0
        self.deadAt = None
        self.moving = False

    def seen(self, m, now):
        f = self.fighter
        f.update(m, now)
        f.effects.clear()
        if f.dead and self.deadAt is None:
            self.deadAt = now

    def step(self, bot, now):
        f = self.fighter
        w = bot.world
        if f.dead:
            if self.deadAt is not None and now - self.deadAt > RELEASE_AFTER:
                self.deadAt = now + 10.0  # again, if no answer comes
                bot.run.track(self.release(bot))
            return
        act = f.decide(w.x, w.z, self.moving, now)
        if act[0] == "walk":
            dx, dz = act[1] - w.x, act[2] - w.z
            d = math.hypot(dx, dz) or 1.0
            step = min(d, 1.0)  # 5 m/s at 5 Hz
            bot.sendMove(w.x + dx / d * step, w.z + dz / d * step, dx / d * 5.0, dz / d * 5.0)
            self.moving = True
        elif act[0] in ("stand", "idle"):
            if self.moving:
                bot.sendMove(w.x, w.z, 0.0, 0.0)
            self.moving = False
        elif act[0] == "cast":
            _, ability, target, x, z = act
            self.nextId += 1
            f.sent(self.nextId, ability, now, target)
            bot.run.track(self.cast(bot, self.nextId, ability, target, x, z))

    async def cast(self, bot, requestId, ability, target, x, z):
        f = self.fighter
        try:
            ms = await bot.world.cast(ability.id, target, x, z)
        except RequestError as e:
            f.refused(requestId, e.code, e.retry_after, bot.run.now())
        except ConnectionLost:
            f.refused(requestId, "lost", None, bot.run.now())
        else:
            f.accepted(requestId, ms, bot.run.now())
            bot.run.stats.casts += 1

    async def release(self, bot):
        try:
            await bot.world.release()
        except (RequestError, ConnectionLost):
            return
        self.fighter.revived()
        self.deadAt = None


class Kits:
    """The class kits hunters play, from the world.enter reply and the shipped game data."""

    def __init__(self):
        etc = os.path.join(checkoutRoot(), "etc")
        self.data = gameData(os.path.join(etc, "abilities.toml"), os.path.join(etc, "classes.toml"))
        self.kits = {}

    def hunter(self, cid):
        """@return: a callable(world.enter reply) -> L{Hunter}, or None when its class cannot fight."""
        def make(reply):
            kit = self.kitFor(reply.get("class"), reply.get("combat"))
            return Hunter(cid, kit) if kit is not None and kit.attacks else None
        return make

    def kitFor(self, cls, combat):
        if cls not in self.kits:
            specs = self.data.abilities if self.data is not None else {}
            abilities = [Ability.fromReply(d, specs.get(d.get("id")))
                         for d in (combat or {}).get("abilities") or ()
                         if d.get("id") in specs or "num" in d]
            self.kits[cls] = Kit.build(cls, abilities) if abilities else None
        return self.kits[cls]


def _txn_grants(cursor):
    cursor.execute("SELECT character_id, idem_key, kind, result FROM progression_ledger "
                   "ORDER BY character_id, created_at")
    ledger = cursor.fetchall()
    cursor.execute("SELECT id, level, exp FROM characters")
    return ledger, {int(c): (int(level), int(exp)) for c, level, exp in cursor.fetchall()}


async def checkGrants(sql):
    """
    Read the progression ledger and the characters of the run's database.

    Counted twice: an outcome (a kill's exp, one item of its loot: its key
    names spawn, node boot and death number) with more than one ledger row
    for a character; or a character whose level and exp differ from the
    highest its exp ledger rows say they became (exp added outside the
    ledger: a grant applied again without its row; or less: a save writing
    back exp from before a grant).

    @param sql: an open L{mmoshard.store.sql.SQLStore}.
    @return: {exp_grants, loot_grants, granted_twice, exp_mismatch}.
    """
    ledger, chars = await sql.runInteraction(_txn_grants)
    seen = collections.Counter()
    last = {}
    counts = collections.Counter()
    for cid, key, kind, result in ledger:
        cid = int(cid)
        seen[(cid, key)] += 1
        counts[kind] += 1
        if kind == "exp":
            # (level, exp) only grows: the character's is its rows' highest
            # (rows of one batch share their created_at).
            got = tuple(json.loads(result))
            last[cid] = max(last.get(cid, got), got)
    twice = sum(n - 1 for n in seen.values() if n > 1)
    mismatch = sum(1 for cid, got in last.items() if chars.get(cid) != got)
    return {"exp_grants": counts["exp"], "loot_grants": counts["add"], "granted_twice": twice,
            "exp_mismatch": mismatch}
