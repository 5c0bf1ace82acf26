// The play client's world model under Node: terrain as the server checks it, entities, interpolation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { World, INTERPOLATION_DELAY_MS } from "../play/world.js";

// greenvale's map as world.enter describes it (etc/zones.toml).
const GREENVALE = {
  id: "greenvale", size: [1024, 1024], tick_rate: 10, aoi_radius: 50, max_speed: 7, tile: 4,
  blocked: [[300, 300, 340, 320], [600, 100, 608, 400]],
  portals: [{ kind: "zone", rect: [1000, 500, 1024, 524], to: "ashfall" },
    { kind: "instance", rect: [296, 56, 304, 64], to: "deadmines", name: "The Dead Mines" }],
  graveyard: [150, 40], pvp: false,
};

function world() {
  const w = new World();
  w.setZone(GREENVALE);
  w.me = { id: 1, name: "Me", x: 128, z: 64 };
  return w;
}

function enter(id, name, x, z, extra = {}) {
  return { id, kind: "p", name, cls: "mage", level: 1, x, z, vx: 0, vz: 0, ...extra };
}

test("terrain blocks every tile a rectangle touches, as the server's Terrain does", () => {
  const w = world();
  assert.equal(w.isBlocked(320, 310), true); // inside the mill
  assert.equal(w.isBlocked(300, 300), true); // its corner
  assert.equal(w.isBlocked(343.9, 323.9), true); // the tile holding x1, z1 (340..344, 320..324)
  assert.equal(w.isBlocked(344.1, 310), false);
  assert.equal(w.isBlocked(299.9, 310), false);
  assert.equal(w.isBlocked(128, 64), false);
  assert.equal(w.pathBlocked(290, 310, 350, 310), true); // through the mill
  assert.equal(w.pathBlocked(290, 290, 350, 290), false); // north of it
});

test("portals are found by their rectangle, with a margin", () => {
  const w = world();
  assert.equal(w.portalAt(300, 60).to, "deadmines");
  assert.equal(w.portalAt(300, 50), null);
  assert.equal(w.portalAt(300, 50, 12).kind, "instance");
});

test("enters, moves and leaves keep the entities in view", () => {
  const w = world();
  w.applyUpdate({ enters: [enter(2, "Ann", 130, 64), enter(1, "Me", 0, 0)], leaves: [], moves: [] }, 1000);
  assert.deepEqual(Object.keys(w.entities), ["2"]); // never oneself
  w.applyUpdate({ enters: [], leaves: [], moves: [{ id: 2, x: 131, z: 65, vx: 5, vz: 5 }] }, 1200);
  assert.equal(w.entities[2].x, 131);
  assert.equal(w.entity(2).name, "Ann");
  assert.equal(w.entity(1), w.me);
  const left = w.applyUpdate({ enters: [], leaves: [2], moves: [] }, 1300);
  assert.deepEqual(left, [2]);
  assert.equal(w.entity(2), null);
});

test("others are drawn in the past, between their move records", () => {
  const w = world();
  w.applyUpdate({ enters: [enter(2, "Ann", 100, 100)], leaves: [], moves: [] }, 1000);
  w.applyUpdate({ enters: [], leaves: [], moves: [{ id: 2, x: 102, z: 100, vx: 10, vz: 0 }] }, 1200);
  // Before the first record: where it entered.
  assert.deepEqual(w.positionAt(2, 1000 + INTERPOLATION_DELAY_MS - 50), { x: 100, z: 100 });
  // Half-way between the two records.
  const mid = w.positionAt(2, 1100 + INTERPOLATION_DELAY_MS);
  assert.ok(Math.abs(mid.x - 101) < 1e-9, JSON.stringify(mid));
  // Past the newest: on along its velocity (10 m/s), for 300 ms at most.
  assert.ok(Math.abs(w.positionAt(2, 1300 + INTERPOLATION_DELAY_MS).x - 103) < 1e-9);
  assert.ok(Math.abs(w.positionAt(2, 5000 + INTERPOLATION_DELAY_MS).x - 105) < 1e-9);
});

test("a new zone forgets the entities in view", () => {
  const w = world();
  w.applyUpdate({ enters: [enter(2, "Ann", 130, 64)], leaves: [], moves: [] }, 1000);
  w.setZone({ ...GREENVALE, id: "ashfall", size: [512, 512], blocked: [] });
  assert.deepEqual(w.entities, {});
  assert.equal(w.isBlocked(320, 310), false);
});

test("pick and nearest find entities around a point", () => {
  const w = world();
  w.applyUpdate({ enters: [enter(2, "Near", 130, 64), enter(3, "Far", 170, 64, { kind: "n" })],
    leaves: [], moves: [] }, 0);
  assert.equal(w.pick(131, 64, 3, 10000).name, "Near");
  assert.equal(w.pick(150, 64, 3, 10000), null);
  assert.deepEqual(w.nearest(() => true).map((e) => e.name), ["Near", "Far"]);
  assert.deepEqual(w.nearest((e) => e.kind === "n").map((e) => e.name), ["Far"]);
});
