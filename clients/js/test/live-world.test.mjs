// world.u decoding against a real twistd node: two players enter greenvale's start point, one
// moves and casts, the other sees its enter, move and combat records; resume resets the view.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, decodeWorldUpdate } from "../src/index.js";
import { CLIENT, QUICK_SESSION, newPlayer, refusal, sharedNode, waitFor } from "./node.mjs";

let node;
sharedNode(QUICK_SESSION, (started) => { node = started; });

/** A warrior in the world, with every world.u it gets decoded into `updates`. */
async function inWorld() {
  const player = await newPlayer(node, "warrior");
  const client = await connect(node.ws, player.tokens.access_token, CLIENT);
  const updates = [];
  const corrections = [];
  client.on("world.u", (m) => updates.push(decodeWorldUpdate(m)));
  client.on("world.correct", (m) => corrections.push(m));
  const entered = await client.request("world.enter", { character_id: player.character.id });
  return { ...player, client, updates, corrections, entered, id: player.character.id };
}

const seen = (updates, pick) => updates.flatMap(pick);

test("world errors: another account's character, and combat before entering", async () => {
  const ann = await newPlayer(node);
  const bob = await newPlayer(node);
  const client = await connect(node.ws, ann.tokens.access_token, CLIENT);
  let error = await refusal(client.request("world.enter", { character_id: bob.character.id }));
  assert.equal(error.code, "world.no_such_character");
  error = await refusal(client.request("world.cast", { ability: "shield_wall" }));
  assert.equal(error.code, "world.not_in_world");
  await client.close();
});

test("a player sees another enter, move, cast and leave; a resume resets its view", async () => {
  const bob = await inWorld();
  const ann = await inWorld();
  assert.equal(ann.entered.zone.id, "greenvale");
  const start = { x: ann.entered.x, z: ann.entered.z };

  // Bob sees Ann come into view with her full state and health.
  const enter = await waitFor(
    () => seen(bob.updates, (u) => u.enters).find((e) => e.id === ann.id), 10, "ann's enter record");
  assert.deepEqual(
    [enter.kind, enter.name, enter.class, enter.level, enter.x, enter.z, enter.dead, enter.evading],
    ["p", ann.character.name, "warrior", 1, start.x, start.z, false, false]);
  assert.equal(enter.hp, ann.entered.combat.hp);
  assert.equal(enter.hp_max, ann.entered.combat.hp_max);

  // Ann walks a metre along +x: Bob gets her move record, client time echoed.
  ann.client.send("world.move", { x: start.x + 1, z: start.z, vx: 5.0, vz: 0.0, ct: 123456, k: ann.entered.k });
  const move = await waitFor(
    () => seen(bob.updates, (u) => u.moves).find((m) => m.id === ann.id && m.ct === 123456), 10, "ann's move");
  assert.deepEqual(
    [move.kind, move.x, move.z, move.vx, move.vz, move.speed, move.heading],
    ["p", start.x + 1, start.z, 5, 0, 5, 0]);
  assert.deepEqual(ann.corrections, []);

  // Ann's Shield Wall (an instant self buff): both see its AURA_ON record.
  const shieldWall = ann.entered.combat.abilities.find((a) => a.id === "shield_wall");
  const cast = await ann.client.request("world.cast", { ability: "shield_wall" });
  assert.equal(cast.cast_ms, 0);
  for (const observer of [bob, ann]) {
    const aura = await waitFor(() => seen(observer.updates, (u) => u.events)
      .find((e) => e.type === "aura_on" && e.bearer === ann.id), 10, "the aura record");
    assert.deepEqual([aura.source, aura.ability, aura.entity, aura.duration_ms],
      [ann.id, shieldWall.num, ann.id, 10000]);
  }

  // Bob's link drops: he resumes, gets world.reset, and the next update re-enters Ann.
  const reset = bob.client.nextEvent("world.reset", 15);
  bob.client.drop();
  const body = await reset;
  assert.equal(body.zone.id, "greenvale");
  const before = bob.updates.length;
  await waitFor(() => bob.updates.slice(before).some((u) => u.enters.some((e) => e.id === ann.id)),
    10, "ann entering bob's view again");
  assert.equal(bob.client.resumes, 1);

  // Ann leaves the world: her id is in Bob's next `l`.
  assert.deepEqual((await ann.client.request("world.leave")).ok, true);
  await waitFor(() => seen(bob.updates, (u) => u.left).includes(ann.id), 10, "ann leaving bob's view");
  await ann.client.close();
  await bob.client.close();
});
