// world.u decoding against the server's own packing: the records and the message are made by
// mmoshard's Python code (interest.packMove, movesMessage, combat records, the codec, Entity.fullState).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";

import {
  COMBAT_RECORD_SIZE, CombatFlag, CombatKind, MOVE_RECORD_SIZE, decodeMessage, decodeWorldUpdate,
} from "../src/index.js";
import { PYTHON, REPO } from "./node.mjs";

// Runs in the checkout: the layouts are the server's, not a copy of them.
const SCRIPT = String.raw`
import json, types
from mmoshard.wire.codec import encode
from mmoshard.world.interest import MOVE, movesMessage, packMove
from mmoshard.world.combat import records as R
from mmoshard.world.sim import Entity

def entity(eid, kind, x, z, vx, vz, ct, name="", cls="", level=1, combat=None):
    e = Entity(eid, kind, x, 0.0, z, name, cls, level)
    e.vx, e.vz, e.ct, e.combat = vx, vz, ct, combat
    return e

ann = entity(7, "p", 128.25, 64.5, 5.0, -2.5, 4294967295, "Ann", "warrior", 3,
             types.SimpleNamespace(hp=150.0, hpMax=160.0, dead=False, immune=False))
wolf = entity(2**31 + 5, "n", 1000.125, 0.0, -400.0, 0.0, 123, "Young Wolf", "young_wolf", 2,
              types.SimpleNamespace(hp=0.0, hpMax=100.0, dead=True, immune=True))
plain = entity(8, "p", 1.0, 2.0, 0.0, 0.0, 0, "Bo", "mage", 1)
m = packMove(ann) + packMove(wolf) + packMove(plain)
c = b"".join([
    R.record(R.CAST_START, 7, 2**31 + 5, 2500, ability=101),
    R.record(R.DAMAGE, 7, 2**31 + 5, 42, ability=101, flags=R.CRIT | R.ABSORBED),
    R.record(R.DAMAGE, 2**31 + 5, 7, 0, flags=R.IMMUNE),
    R.record(R.HEAL, 9, 7, 12, ability=301, flags=R.CRIT),
    R.record(R.HEALTH, 7, 160, 150),
    R.record(R.AURA_ON, 7, 7, 10000, ability=105),
    R.record(R.AURA_OFF, 7, 7, 0, ability=105),
    R.record(R.DEATH, 7, 2**31 + 5, 0),
    R.record(R.REVIVE, 0, 7, 80),
    R.record(R.RESOURCE, 7, 100, 35),
    R.record(R.EVADE, 2**31 + 5, 0, 1),
    R.record(R.CAST_INTERRUPT, 7, 0, 0, ability=65535),
    R.record(R.CAST_FINISH, 7, 9, -1, ability=3),
])
update = {"t": "world.u", "e": [ann.fullState(), wolf.fullState(), plain.fullState()],
          "l": [3, 2**31 + 9], "m": m, "c": c}
print(json.dumps({
    "update": encode(update).hex(),
    "moves_only": movesMessage(m).hex(),
    "move_size": MOVE.size, "record_size": R.RECORD_SIZE,
    "kinds": {k: getattr(R, k) for k in ("CAST_START", "CAST_FINISH", "CAST_INTERRUPT", "DAMAGE",
              "HEAL", "HEALTH", "AURA_ON", "AURA_OFF", "DEATH", "REVIVE", "RESOURCE", "EVADE")},
    "flags": {k: getattr(R, k) for k in ("CRIT", "ABSORBED", "IMMUNE")},
}))
`;

const golden = JSON.parse(execFileSync(PYTHON, ["-c", SCRIPT], {
  cwd: REPO,
  env: { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(":") },
}).toString());
const fromHex = (hex) => new Uint8Array(Buffer.from(hex, "hex"));
const NPC = 2 ** 31 + 5;

test("the record sizes, kinds and flags are the server's", () => {
  assert.equal(MOVE_RECORD_SIZE, golden.move_size);
  assert.equal(COMBAT_RECORD_SIZE, golden.record_size);
  assert.deepEqual({ ...CombatKind }, golden.kinds);
  assert.deepEqual({ ...CombatFlag }, golden.flags);
});

test("enter records decode with their health; ids that left are listed", () => {
  const u = decodeWorldUpdate(decodeMessage(fromHex(golden.update)));
  assert.deepEqual(u.enters, [
    { id: 7, kind: "p", name: "Ann", class: "warrior", level: 3, x: 128.25, y: 0, z: 64.5,
      vx: 5, vz: -2.5, hp: 150, hp_max: 160, dead: false, evading: false },
    { id: NPC, kind: "n", name: "Young Wolf", class: "young_wolf", level: 2, x: 1000.125, y: 0,
      z: 0, vx: -400, vz: 0, hp: 0, hp_max: 100, dead: true, evading: true },
    { id: 8, kind: "p", name: "Bo", class: "mage", level: 1, x: 1, y: 0, z: 2, vx: 0, vz: 0 },
  ]);
  assert.deepEqual(u.left, [3, 2 ** 31 + 9]);
});

test("move records decode: float32 positions, cm/s velocities clamped to int16, uint32 client time", () => {
  const u = decodeWorldUpdate(decodeMessage(fromHex(golden.update)));
  assert.equal(u.moves.length, 3);
  const [ann, wolf, plain] = u.moves;
  assert.deepEqual(
    { id: ann.id, kind: ann.kind, x: ann.x, z: ann.z, vx: ann.vx, vz: ann.vz, ct: ann.ct },
    { id: 7, kind: "p", x: 128.25, z: 64.5, vx: 5, vz: -2.5, ct: 4294967295 },
  );
  assert.ok(Math.abs(ann.speed - Math.hypot(5, 2.5)) < 1e-9);
  assert.ok(Math.abs(ann.heading - Math.atan2(-2.5, 5)) < 1e-9);
  // -400 m/s is beyond int16 cm/s: the server clamps it to -32768 cm/s.
  assert.deepEqual(
    { id: wolf.id, kind: wolf.kind, x: wolf.x, vx: wolf.vx, ct: wolf.ct },
    { id: NPC, kind: "n", x: 1000.125, vx: -327.68, ct: 123 },
  );
  assert.equal(plain.speed, 0);
  assert.equal(plain.heading, null);
  // The server's fast path (moves only, its msgpack head built by hand) decodes the same.
  const fast = decodeWorldUpdate(decodeMessage(fromHex(golden.moves_only)));
  assert.deepEqual(fast.moves, u.moves);
  assert.deepEqual([fast.enters, fast.left, fast.events], [[], [], []]);
});

test("combat records decode with each kind's named fields and flags", () => {
  const events = decodeWorldUpdate(decodeMessage(fromHex(golden.update))).events;
  const pick = (e, ...keys) => Object.fromEntries(keys.map((k) => [k, e[k]]));
  assert.equal(events.length, 13);
  assert.deepEqual(pick(events[0], "type", "caster", "target", "cast_ms", "ability", "entity"),
    { type: "cast_start", caster: 7, target: NPC, cast_ms: 2500, ability: 101, entity: 7 });
  assert.deepEqual(pick(events[1], "type", "source", "target", "amount", "crit", "absorbed", "immune", "entity"),
    { type: "damage", source: 7, target: NPC, amount: 42, crit: true, absorbed: true, immune: false, entity: NPC });
  assert.deepEqual(pick(events[2], "type", "source", "target", "amount", "crit", "immune", "ability"),
    { type: "damage", source: NPC, target: 7, amount: 0, crit: false, immune: true, ability: 0 });
  assert.deepEqual(pick(events[3], "type", "source", "target", "amount", "crit"),
    { type: "heal", source: 9, target: 7, amount: 12, crit: true });
  assert.deepEqual(pick(events[4], "type", "entity", "hp", "hp_max"),
    { type: "health", entity: 7, hp: 150, hp_max: 160 });
  assert.deepEqual(pick(events[5], "type", "source", "bearer", "duration_ms", "ability"),
    { type: "aura_on", source: 7, bearer: 7, duration_ms: 10000, ability: 105 });
  assert.deepEqual(pick(events[6], "type", "source", "bearer"), { type: "aura_off", source: 7, bearer: 7 });
  assert.deepEqual(pick(events[7], "type", "killer", "entity"), { type: "death", killer: 7, entity: NPC });
  assert.deepEqual(pick(events[8], "type", "reviver", "entity", "hp"), { type: "revive", reviver: 0, entity: 7, hp: 80 });
  assert.deepEqual(pick(events[9], "type", "entity", "resource", "resource_max"),
    { type: "resource", entity: 7, resource: 35, resource_max: 100 });
  assert.deepEqual(pick(events[10], "type", "entity", "evading"), { type: "evade", entity: NPC, evading: true });
  assert.deepEqual(pick(events[11], "type", "caster", "interrupter", "ability"),
    { type: "cast_interrupt", caster: 7, interrupter: 0, ability: 65535 });
  // value is signed int32.
  assert.deepEqual(pick(events[12], "type", "caster", "target", "value", "kind", "flags", "a", "b"),
    { type: "cast_finish", caster: 7, target: 9, value: -1, kind: 2, flags: 0, a: 7, b: 9 });
});

test("an update without fields, a kind this client does not know and a partial record", () => {
  assert.deepEqual(decodeWorldUpdate({ t: "world.u" }), { enters: [], left: [], moves: [], events: [] });
  const blob = new Uint8Array(COMBAT_RECORD_SIZE + 5);
  blob[0] = 99;
  const [event, ...rest] = decodeWorldUpdate({ c: blob }).events;
  assert.equal(event.type, "unknown");
  assert.equal(event.kind, 99);
  assert.deepEqual(rest, []);
});
