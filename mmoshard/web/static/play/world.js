// What the client knows of the world: the zone's map, its own character, the entities in view and their recent positions (for interpolation).

// Entities are drawn this far in the past, between two move records (movers
// send 5 a second; the server relays them at its tick).
export const INTERPOLATION_DELAY_MS = 220;
// Past the newest record an entity is moved on along its velocity this long at most.
const EXTRAPOLATE_MS = 300;
// Positions kept per entity.
const TRACK_MS = 1500;

export class World {
  constructor() {
    this.zone = null;
    this.blocked = new Set();
    this.cols = 0;
    this.me = null;
    // id (string) -> plain data (JSON-able: the page state the tests read).
    this.entities = {};
    // id -> [{t, x, z, vx, vz}]: recent positions, oldest first.
    this.tracks = new Map();
  }

  /** A new zone (world.enter, world.zone, world.reset): its map, and nothing in view yet. */
  setZone(zone) {
    this.zone = zone;
    this.entities = {};
    this.tracks.clear();
    const tile = zone.tile || 4;
    const [width, depth] = zone.size;
    this.cols = Math.ceil(width / tile) + 1;
    const rows = Math.ceil(depth / tile) + 1;
    this.blocked = new Set();
    // As the server's Terrain: every tile a rectangle touches.
    for (const [x0, z0, x1, z1] of zone.blocked || []) {
      for (let i = Math.max(0, Math.floor(x0 / tile)); i <= Math.min(this.cols - 1, Math.floor(x1 / tile)); i++) {
        for (let j = Math.max(0, Math.floor(z0 / tile)); j <= Math.min(rows - 1, Math.floor(z1 / tile)); j++) {
          this.blocked.add(j * this.cols + i);
        }
      }
    }
  }

  /** Whether the tile under (x, z) is blocked (the server refuses moves onto it). */
  isBlocked(x, z) {
    if (!this.blocked.size) return false;
    const tile = this.zone.tile || 4;
    return this.blocked.has(Math.floor(z / tile) * this.cols + Math.floor(x / tile));
  }

  /** Whether a straight walk from (x0, z0) to (x1, z1) crosses a blocked tile (sampled as the server does). */
  pathBlocked(x0, z0, x1, z1) {
    if (!this.blocked.size) return false;
    const tile = this.zone.tile || 4;
    const dx = x1 - x0;
    const dz = z1 - z0;
    const steps = Math.floor(Math.hypot(dx, dz) / (tile * 0.5)) + 1;
    for (let k = 1; k <= steps; k++) {
      const f = k / steps;
      if (this.isBlocked(x0 + dx * f, z0 + dz * f)) return true;
    }
    return false;
  }

  inBounds(x, z) {
    const [width, depth] = this.zone.size;
    return x >= 0 && x <= width && z >= 0 && z <= depth;
  }

  /** The portal (zone data) whose rectangle holds (x, z), if any. */
  portalAt(x, z, margin = 0) {
    for (const portal of this.zone.portals || []) {
      const [x0, z0, x1, z1] = portal.rect;
      if (x >= x0 - margin && x <= x1 + margin && z >= z0 - margin && z <= z1 + margin) return portal;
    }
    return null;
  }

  /** Me (the character played) or an entity in view, by id. */
  entity(id) {
    if (this.me && id === this.me.id) return this.me;
    return this.entities[id] || null;
  }

  /** Apply the enters, leaves and moves of a world.u (normalised by records.js); @return the ids that left. */
  applyUpdate(update, now) {
    const left = [];
    for (const id of update.leaves) {
      delete this.entities[id];
      this.tracks.delete(id);
      left.push(id);
    }
    for (const e of update.enters) {
      if (this.me && e.id === this.me.id) continue;
      this.entities[e.id] = {
        id: e.id, kind: e.kind, name: e.name, cls: e.cls, level: e.level, x: e.x, z: e.z,
        hp: e.hp ?? null, hpMax: e.hpMax ?? null, dead: Boolean(e.dead), evading: Boolean(e.evading),
        cast: null,
      };
      this.tracks.set(e.id, [{ t: now, x: e.x, z: e.z, vx: e.vx || 0, vz: e.vz || 0 }]);
    }
    for (const m of update.moves) {
      const entity = this.entities[m.id];
      if (!entity) continue;
      entity.x = m.x;
      entity.z = m.z;
      const track = this.tracks.get(m.id) || [];
      track.push({ t: now, x: m.x, z: m.z, vx: m.vx || 0, vz: m.vz || 0 });
      while (track.length > 2 && track[1].t < now - TRACK_MS) track.shift();
      this.tracks.set(m.id, track);
    }
    return left;
  }

  /** Where entity `id` is drawn at time `now` (ms): interpolated INTERPOLATION_DELAY_MS in the past. */
  positionAt(id, now) {
    const track = this.tracks.get(id);
    const entity = this.entities[id];
    if (!track || !track.length) return entity ? { x: entity.x, z: entity.z } : null;
    const t = now - INTERPOLATION_DELAY_MS;
    if (t <= track[0].t) return { x: track[0].x, z: track[0].z };
    for (let i = track.length - 1; i > 0; i--) {
      const a = track[i - 1];
      const b = track[i];
      if (t >= a.t && t <= b.t) {
        const f = b.t > a.t ? (t - a.t) / (b.t - a.t) : 1;
        return { x: a.x + (b.x - a.x) * f, z: a.z + (b.z - a.z) * f };
      }
    }
    const last = track[track.length - 1];
    const ahead = Math.min(t - last.t, EXTRAPOLATE_MS) / 1000;
    return { x: last.x + last.vx * ahead, z: last.z + last.vz * ahead };
  }

  /** The entity nearest to (x, z) within `radius` metres, or null. */
  pick(x, z, radius, now) {
    let best = null;
    let bestDistance = radius;
    for (const id of Object.keys(this.entities)) {
      const p = this.positionAt(Number(id), now) || this.entities[id];
      const d = Math.hypot(p.x - x, p.z - z);
      if (d <= bestDistance) {
        best = this.entities[id];
        bestDistance = d;
      }
    }
    return best;
  }

  /** Entities in view, nearest first, that `accept(entity)`. */
  nearest(accept) {
    const me = this.me;
    return Object.values(this.entities)
      .filter(accept)
      .sort((a, b) => Math.hypot(a.x - me.x, a.z - me.z) - Math.hypot(b.x - me.x, b.z - me.z));
  }
}
