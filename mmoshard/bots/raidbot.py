"""One raid bot's connection: session, world and chat requests, what it counts, its 5 Hz turn inside an instance."""

import math
import sys

from twisted.internet.protocol import Protocol

from mmoshard.bots import w1
from mmoshard.bots.raidmind import HEALER, PARTY_ROLES, TANK, Member, RaidFighter, roleKit
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame
from mmoshard.world.instances.ids import parseInstanceZone

SPEED = 5.0  # m/s, under the zones' max_speed
RELEASE_AFTER = 3.0  # seconds a dead bot lies before world.release
FIRST_CAST_ID = 100
# Request ids by type: a reply or an error names the request by its id.
REQUESTS = ("hello", "world.enter", "world.release", "chat.hello", "chat.party.create",
            "chat.party.invite", "chat.party.accept", "world.instance.enter",
            "world.instance.leave", "chat.party.leave", "world.leave")
IDS = {t: i + 1 for i, t in enumerate(REQUESTS)}
TYPES = {i: t for t, i in IDS.items()}


class RaidBot(Protocol):
    """
    One party member of one generation: hello, world.enter, chat.hello
    (leaving any party the character is still in), then whatever its
    L{mmoshard.bots.raid.RaidParty} asks (invites, instance entry) and,
    inside, its L{RaidFighter}'s decisions every 5 Hz turn. It counts the
    world.loot it receives by (instance zone, source) to find duplicates.
    """

    def __init__(self, run, party, slot, cid):
        self.run = run
        self.party = party
        self.slot = slot
        self.cid = cid
        self.member = Member(slot, PARTY_ROLES[slot], cid)
        self.decoder = FrameDecoder(1 << 22)
        self.name = None
        self.cls = None
        self.combat = None
        self.chatReady = False
        self.entered = False
        self.zone = None
        self.k = 0
        self.vx = self.vz = 0.0
        self.moving = False
        self.lastSend = 0.0
        self.fighter = None
        self.dead = False
        self.releaseAt = None
        self.nextId = FIRST_CAST_ID
        self.closing = False
        self.quitting = False
        self.loot = set()
        self.invite = None  # the party id of the invite it accepted

    @property
    def x(self):
        return self.member.x

    @property
    def z(self):
        return self.member.z

    # --- requests ----------------------------------------------------------------------

    def request(self, t, body):
        """Send request C{t} with C{body}, under its fixed id."""
        if self.transport is None or self.closing:
            return
        self.transport.write(frame(encode(dict(body, t=t, id=IDS[t]))))

    def quit(self):
        """Leave the party and the world, then close (the generation is over for this bot)."""
        if self.quitting:
            return
        self.quitting = True
        if self.chatReady:
            self.request("chat.party.leave", {})
        else:
            self.request("world.leave", {})

    def close(self):
        self.closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    # --- the connection ------------------------------------------------------------------

    def connectionMade(self):
        self.run.stats.connected += 1
        self.transport.setTcpNoDelay(True)
        self.request("hello", {"token": self.run.token(self.cid), "client_version": "bots-1",
                               "platform": "bots"})

    def connectionLost(self, reason):
        run = self.run
        if not (run.stopping or self.closing):
            run.stats.disconnects += 1
        slot = run.slots[self.cid % len(run.slots)]
        if self in slot:
            slot.remove(self)
        self.party.closed(self)

    def dataReceived(self, data):
        stats = self.run.stats
        stats.bytesIn += len(data)
        for p in self.decoder.feed(data):
            self.handle(decode(p))

    def handle(self, m):
        t = m["t"]
        if t == "world.u":
            self.update(m)
        elif t == "world.cast":
            f = self.fighter
            if f is not None and f.accepted(m.get("id"), m.get("cast_ms", 0), self.run.now()):
                self.run.stats.accepted += 1
        elif t == "error":
            self.error(m)
        elif t == "ping":
            self.transport.write(frame(encode({"t": "pong", "n": m.get("n")})))
        elif t == "world.correct":
            self.member.x, self.member.z, self.k = m["x"], m["z"], m["k"]
        elif t in ("world.zone", "world.reset"):
            self.zoned(m)
        else:
            self.reply(t, m)

    def reply(self, t, m):
        """Replies and events other than the hot ones."""
        run = self.run
        party = self.party
        if t == "world.encounter":
            party.encounter(m)
        elif t == "world.loot":
            self.looted(m)
        elif t == "world.progress":
            run.stats.progress += 1
        elif t == "world.release":
            self.member.x, self.member.z, self.k = m["x"], m["z"], m["k"]
            if self.dead:
                self.revived(run.now())
        elif t == "welcome":
            self.request("world.enter", {"character_id": self.cid})
        elif t == "world.enter":
            self.enteredWorld(m)
        elif t == "chat.hello":
            if m.get("party"):
                # Still in a party from an earlier run: out of it first.
                self.request("chat.party.leave", {})
            else:
                self.chatReady = True
                party.ready(self)
        elif t == "chat.party.leave":
            if self.quitting:
                self.request("world.leave", {})
            elif not self.chatReady:
                self.chatReady = True
                party.ready(self)
        elif t == "world.leave":
            self.close()
        elif t == "chat.party.create":
            party.created(self, m["party"])
        elif t == "chat.party.invited":
            party.invited(self, m)
        elif t == "chat.party.update":
            party.partyUpdate(self, m)
        elif t == "world.transfer":
            # An instance in another process: not followed (the bench runs one).
            run.stats.errors["world.transfer"] += 1
            self.party.abandon("world.transfer to another process")
        elif t == "world.kicked":
            run.stats.errors["world.kicked"] += 1

    def error(self, m):
        run = self.run
        rid = m.get("id") or 0
        code = m.get("code")
        if rid >= FIRST_CAST_ID:
            f = self.fighter
            if f is not None and f.refused(rid, code, m.get("retry_after"), run.now()):
                run.stats.refused[code] += 1
            return
        t = TYPES.get(rid)
        if t == "world.instance.enter":
            self.party.enterRefused(self, code, m.get("retry_after"))
            return
        if t == "chat.party.leave" and code == "chat.not_in_party":
            # The others left first and the party was disbanded: nothing to leave.
            self.request("world.leave", {})
            return
        run.stats.errors[code] += 1
        if t == "world.release":
            if self.dead and code == "combat.not_dead":
                self.revived(run.now())
        elif t == "world.enter":
            if code in ("world.character_busy", "server.unavailable"):
                run.reactor.callLater(m.get("retry_after") or 1.0, self.request, "world.enter",
                                      {"character_id": self.cid})
            else:
                self.party.abandon(f"world.enter: {code}")
        elif t == "world.instance.leave" or t == "chat.party.leave":
            self.quit() if t == "world.instance.leave" else self.request("world.leave", {})
        elif t == "world.leave":
            self.close()
        elif t == "chat.party.accept" and code == "chat.busy" and self.invite is not None:
            # The party kept changing under it (four accepts at once): again, the invite holds.
            run.reactor.callLater(0.5, self.request, "chat.party.accept", {"party_id": self.invite})
        elif t in ("chat.hello", "chat.party.create", "chat.party.invite", "chat.party.accept",
                   "hello"):
            self.party.abandon(f"{t}: {code}")

    def enteredWorld(self, m):
        run = self.run
        if "redirect" in m:
            run.stats.errors["world.redirect"] += 1
            self.party.abandon("world.enter redirected")
            return
        if not self.entered:
            self.entered = True
            run.stats.entered += 1
            run.slots[self.cid % len(run.slots)].append(self)
        self.name = m.get("name")
        self.cls = m.get("class")
        self.combat = m.get("combat")
        self.place(m)
        self.request("chat.hello", {"character_id": self.cid})

    def place(self, m):
        """Where a world.enter, world.zone or world.reset puts it."""
        self.member.x, self.member.z, self.k = m["x"], m["z"], m["k"]
        zone = m.get("zone")
        self.zone = zone.get("id") if isinstance(zone, dict) else zone
        self.member.inside = self.zone is not None and parseInstanceZone(self.zone) is not None
        self.moving = False
        self.lastSend = self.run.now()

    def arm(self, role, mind):
        """Play C{role} in C{mind} (the party's), with its class's kit. @return: the fighter or None."""
        self.member.role = role
        kit = roleKit(self.run.kitFor(self.cls, self.combat), role)
        if kit is None:
            self.fighter = None
            return None
        self.fighter = f = RaidFighter(self.cid, kit, role, mind)
        self.member.fighter = f
        combat = self.combat or {}
        f.hp, f.hpMax, f.res = combat.get("hp"), combat.get("hp_max"), combat.get("resource")
        return f

    # --- the world ------------------------------------------------------------------------

    def zoned(self, m):
        """Moved to another zone (into the instance or back out): it saw nothing there yet."""
        self.place(m)
        f = self.fighter
        if f is not None:
            f.forget()
            combat = m.get("combat") or {}
            if "hp" in combat:
                f.hp, f.hpMax = combat.get("hp"), combat.get("hp_max")
                f.res = combat.get("resource")
            if combat.get("dead"):
                self.died(self.run.now())
            elif self.dead:
                self.revived(self.run.now())
        self.party.zoned(self, self.member.inside)

    def update(self, m):
        """A world.u: the fighter's view, the effects of its casts, its own death and revival."""
        f = self.fighter
        if f is None:
            return
        run = self.run
        now = run.now()
        f.update(m, now)
        if f.effects:
            run.stats.effects.extend(e.latency for e in f.effects)
            f.effects.clear()
        if f.dead != self.dead:
            self.died(now) if f.dead else self.revived(now)

    def died(self, now):
        self.dead = True
        self.moving = False
        self.releaseAt = now + RELEASE_AFTER
        if self.fighter is not None:
            self.fighter.dead = True
        self.run.stats.deaths += 1
        if self.party.mind.deaths():
            self.run.stats.wipes += 1

    def revived(self, now):
        self.dead = False
        self.releaseAt = None
        if self.fighter is not None:
            self.fighter.revived()
        self.lastSend = now
        self.party.mind.deaths()

    def looted(self, m):
        """A world.loot: counted, and a second one from the same source in the same instance is a duplicate."""
        stats = self.run.stats
        key = (self.zone, m.get("from"))
        if key in self.loot:
            stats.duplicates += 1
            print(f"[raid] DUPLICATE: character {self.cid} got world.loot from {key[1]} in "
                  f"{key[0]} twice", file=sys.stderr, flush=True)
        self.loot.add(key)
        stats.rewards += 1
        stats.rewardsTotal += 1
        stats.items += sum(i.get("count", 1) for i in m.get("items", ()))
        if self.party.mind.lastKill is not None:
            self.party.mind.lootFor(self.cid)

    # --- the 5 Hz turn ---------------------------------------------------------------------

    def step(self, now, ct):
        """One turn: inside an instance, what the fighter (or the party, when it is idle) decides."""
        f = self.fighter
        if f is None or not self.member.inside or self.quitting:
            self.lastSend = now
            return False
        if self.dead:
            self.lastSend = now
            if self.releaseAt is not None and now >= self.releaseAt:
                self.releaseAt = now + 10.0  # again, if no revival comes
                self.request("world.release", {})
                self.run.stats.releases += 1
            return False
        act = f.decide(self.x, self.z, self.moving, now)
        if act[0] == "idle":
            act = self.party.mind.idle(self.member, now)
        what = act[0]
        if what == "walk":
            return self.walk(act[1], act[2], now, ct)
        self.lastSend = now
        if what == "stand":
            return self.stop(ct)
        _, ability, target, x, z = act
        body = {"ability": ability.id}
        if target is not None:
            body["target"] = target
        if x is not None:
            body["x"], body["z"] = x, z
        rid = self.nextId
        self.transport.write(frame(encode(dict(body, t="world.cast", id=rid))))
        f.sent(rid, ability, now, target)
        self.nextId = rid + 1 if rid < 0x7FFFFFFF else FIRST_CAST_ID
        self.run.stats.casts += 1
        return False

    def walk(self, tx, tz, now, ct):
        """A step of at most C{SPEED} m/s towards (tx, tz), sent as a move. @return: True."""
        dt = min(max(now - self.lastSend, 0.0), 0.5)
        self.lastSend = now
        m = self.member
        dx, dz = tx - m.x, tz - m.z
        d = math.hypot(dx, dz)
        if d < 0.05:
            return self.stop(ct)
        step = min(SPEED * dt, d)
        m.x += dx / d * step
        m.z += dz / d * step
        self.vx, self.vz = SPEED * dx / d, SPEED * dz / d
        self.moving = True
        self.transport.write(w1.packMove(m.x, m.z, self.vx, self.vz, ct, self.k))
        return True

    def stop(self, ct):
        """One move with zero velocity when it was moving. @return: True when it sent one."""
        if not self.moving:
            return False
        self.moving = False
        self.vx = self.vz = 0.0
        self.transport.write(w1.packMove(self.x, self.z, 0.0, 0.0, ct, self.k))
        return True


def partyOf(bots, roles, mind):
    """
    Give the five C{bots} their roles from their classes (C{roles}: class
    -> role): the first tank-class member tanks (slot 0 when none is), the
    first healer-class member heals, the others deal damage; arm each.
    @return: their L{Member}s, the tank first.
    """
    byRole = {b: roles.get(b.cls, "") for b in bots}
    tank = next((b for b in bots if byRole[b] == TANK), bots[0])
    healer = next((b for b in bots if b is not tank and byRole[b] == HEALER), None)
    members = []
    for b in sorted(bots, key=lambda b: (b is not tank, b.slot)):
        role = TANK if b is tank else HEALER if b is healer else "damage"
        b.arm(role, mind)
        members.append(b.member)
    return members

