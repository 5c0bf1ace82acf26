// world.u in the shapes the rest of the page uses, from the client library's decodeWorldUpdate (docs/world.md, docs/combat.md).

import { decodeWorldUpdate } from "/lib/mmoshard-client.js";

// Combat record kinds (docs/combat.md, "Combat records").
export const KINDS = {
  1: "cast_start", 2: "cast_finish", 3: "cast_interrupt", 4: "damage", 5: "heal", 6: "health",
  7: "aura_on", 8: "aura_off", 9: "death", 10: "revive", 11: "resource", 12: "evade",
};
export const CRIT = 0x01;
export const ABSORBED = 0x02;
export const IMMUNE = 0x04;

// The library's enter records ({id, kind, name, class, level, x, y, z, vx, vz, hp?, hp_max?, dead?, evading?}).
function enterOf(e) {
  return {
    id: e.id, kind: e.kind, name: e.name, cls: e.cls ?? e.class, level: e.level, x: e.x, z: e.z,
    vx: e.vx ?? 0, vz: e.vz ?? 0, hp: e.hp ?? null, hpMax: e.hpMax ?? e.hp_max ?? null,
    dead: Boolean(e.dead), evading: Boolean(e.evading),
  };
}

// Moves: velocities in m/s.
function moveOf(m) {
  return { id: m.id, x: m.x, z: m.z, vx: m.vx ?? 0, vz: m.vz ?? 0, ct: m.ct };
}

// The library's combat records keep the raw fields (kind, flags, ability, a, b, value).
function eventOf(r) {
  const flags = r.flags ?? 0;
  return {
    kind: KINDS[r.kind] ?? "unknown", ability: r.ability ?? 0, a: r.a, b: r.b, value: r.value,
    crit: Boolean(flags & CRIT), absorbed: Boolean(flags & ABSORBED), immune: Boolean(flags & IMMUNE),
  };
}

/** The body of a world.u as {enters, leaves, moves, events}. */
export function readUpdate(body) {
  const decoded = decodeWorldUpdate(body);
  return {
    enters: (decoded.enters ?? []).map(enterOf),
    leaves: decoded.left ?? [],
    moves: (decoded.moves ?? []).map(moveOf),
    events: (decoded.events ?? []).map(eventOf),
  };
}

/** The entity a combat record is about (its target; the caster of a cast record). */
export function subjectOf(event) {
  switch (event.kind) {
    case "cast_start": case "cast_finish": case "cast_interrupt": case "health": case "resource": case "evade":
      return event.a;
    default:
      return event.b;
  }
}
