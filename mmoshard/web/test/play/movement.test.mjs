// The play client's movement under Node: prediction, world.move at 5 Hz, the stop, corrections, walls.

import { test } from "node:test";
import assert from "node:assert/strict";
import { World } from "../play/world.js";
import { Movement, SEND_INTERVAL_MS } from "../play/movement.js";

const ZONE = { id: "z", size: [200, 200], max_speed: 7, tile: 4, blocked: [[100, 0, 104, 200]], portals: [] };

function setUp(x = 50, z = 50) {
  const world = new World();
  world.setZone(ZONE);
  world.me = { id: 1, name: "Me", x, z };
  const sent = [];
  const movement = new Movement(world, (body) => sent.push(body));
  return { world, movement, sent };
}

/** Run frames of 25 ms from `start` for `ms`. @return the time reached. */
function run(movement, start, ms) {
  let now = start;
  for (; now < start + ms; now += 25) movement.frame(0.025, now + 25);
  return now;
}

test("holding a key moves at 90% of max_speed and sends world.move five times a second", () => {
  const { world, movement, sent } = setUp();
  movement.press(["KeyD"]);
  run(movement, 0, 1000);
  assert.equal(sent.length, 1000 / SEND_INTERVAL_MS);
  assert.ok(Math.abs(world.me.x - (50 + 7 * 0.9)) < 0.2, String(world.me.x));
  assert.equal(world.me.z, 50);
  const last = sent[sent.length - 1];
  assert.ok(Math.abs(last.vx - 6.3) < 1e-9 && last.vz === 0);
  assert.equal(last.k, 0);
  assert.equal(last.x, world.me.x);
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i].ct - sent[i - 1].ct >= SEND_INTERVAL_MS);
});

test("stopping sends one move with no velocity, then nothing", () => {
  const { movement, sent } = setUp();
  movement.press(["KeyS"]);
  let now = run(movement, 0, 500);
  movement.press([]);
  const before = sent.length;
  now = run(movement, now, 1000);
  assert.equal(sent.length, before + 1);
  assert.deepEqual([sent.at(-1).vx, sent.at(-1).vz], [0, 0]);
  run(movement, now, 1000);
  assert.equal(sent.length, before + 1);
});

test("diagonals are not faster", () => {
  const { world, movement } = setUp();
  movement.press(["KeyD", "KeyS"]);
  run(movement, 0, 1000);
  assert.ok(Math.abs(Math.hypot(world.me.x - 50, world.me.z - 50) - 6.3) < 0.2);
});

test("a correction snaps the character and its k is sent from then on", () => {
  const { world, movement, sent } = setUp();
  movement.press(["KeyD"]);
  const now = run(movement, 0, 400);
  movement.correct({ x: 10, y: 0, z: 20, k: 3, why: "too fast" });
  assert.deepEqual([world.me.x, world.me.z], [10, 20]);
  run(movement, now, 400);
  assert.equal(sent.at(-1).k, 3);
  assert.ok(sent.at(-1).x > 10 && sent.at(-1).x < 14);
});

test("walls stop the character on the near side, sliding along them", () => {
  const { world, movement } = setUp(97, 50);
  movement.press(["KeyD", "KeyS"]);
  run(movement, 0, 3000);
  assert.ok(world.me.x < 100, String(world.me.x)); // never on the wall's tiles
  assert.ok(world.me.z > 60, String(world.me.z)); // but on along it
  assert.equal(world.isBlocked(world.me.x, world.me.z), false);
});

test("the map's edge holds the character in the zone", () => {
  const { world, movement } = setUp(2, 2);
  movement.press(["KeyA", "KeyW"]);
  run(movement, 0, 1000);
  assert.ok(world.me.x > 0 && world.me.z > 0);
});

test("a dead or frozen character neither moves nor sends", () => {
  const { world, movement, sent } = setUp();
  movement.press(["KeyD"]);
  world.me.dead = true;
  run(movement, 0, 500);
  world.me.dead = false;
  movement.frozen = true;
  run(movement, 500, 500);
  assert.deepEqual([world.me.x, sent.length], [50, 0]);
});
