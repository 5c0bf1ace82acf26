// The world drawn top-down on a canvas, centred on the character: ground, blocked terrain, portals, entities with names, health and cast bars, the target, damage numbers.

const PIXELS_PER_METRE = 8;
const COLOURS = {
  ground: "#2f4a2a", outside: "#101410", grid: "rgba(255,255,255,0.05)", blocked: "#5b4a3a",
  blockedEdge: "#3a2e22", zone: "rgba(90,160,255,0.45)", instance: "rgba(190,90,255,0.5)",
  exit: "rgba(255,200,60,0.5)", me: "#6fe06f", player: "#6fb3e8", npc: "#e0684f", evading: "#999",
  dead: "#555", target: "#ffd24a", aoi: "rgba(255,255,255,0.08)", text: "#f0f0f0",
  health: "#3fa34d", healthBack: "rgba(0,0,0,0.6)", cast: "#c98b2b", damage: "#ffe066",
  damageMe: "#ff6b5b", heal: "#7cff7c", graveyard: "rgba(220,220,255,0.6)",
};
const FLOATER_MS = 1300;

export class Renderer {
  constructor(canvas, world) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.world = world;
    this.floaters = []; // damage numbers: {x, z, text, colour, born}
    this.target = null;
    this.scale = PIXELS_PER_METRE;
  }

  /** A floating number at entity `id`'s place (damage, heals). */
  float(id, text, colour, now) {
    const entity = this.world.entity(id);
    if (!entity) return;
    const p = this.placeOf(entity, now);
    this.floaters.push({ x: p.x, z: p.z, text, colour, born: now, jitter: (Math.random() - 0.5) * 20 });
    if (this.floaters.length > 60) this.floaters.shift();
  }

  placeOf(entity, now) {
    if (entity === this.world.me) return entity;
    return this.world.positionAt(entity.id, now) || entity;
  }

  /** Canvas pixel -> world (x, z). */
  toWorld(px, py) {
    const me = this.world.me;
    const { width, height } = this.size();
    return { x: me.x + (px - width / 2) / this.scale, z: me.z + (py - height / 2) / this.scale };
  }

  size() {
    const ratio = window.devicePixelRatio || 1;
    return { width: this.canvas.width / ratio, height: this.canvas.height / ratio };
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width * ratio));
    const height = Math.max(1, Math.round(rect.height * ratio));
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  draw(now) {
    const world = this.world;
    const me = world.me;
    if (!me || !world.zone) return;
    this.resize();
    const ctx = this.ctx;
    const { width, height } = this.size();
    const s = this.scale;
    // World (x, z) -> screen: the character in the middle, +z downwards.
    const sx = (x) => width / 2 + (x - me.x) * s;
    const sy = (z) => height / 2 + (z - me.z) * s;
    const [zw, zd] = world.zone.size;

    ctx.fillStyle = COLOURS.outside;
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = COLOURS.ground;
    ctx.fillRect(sx(0), sy(0), zw * s, zd * s);
    this.drawGrid(sx, sy, width, height);
    this.drawTerrain(sx, sy);
    this.drawPortals(sx, sy);
    const [gx, gz] = world.zone.graveyard || [];
    if (gx !== undefined) this.cross(sx(gx), sy(gz), COLOURS.graveyard);
    ctx.strokeStyle = COLOURS.aoi;
    ctx.beginPath();
    ctx.arc(sx(me.x), sy(me.z), (world.zone.aoi_radius || 50) * s, 0, Math.PI * 2);
    ctx.stroke();

    const drawn = Object.values(world.entities).map((e) => ({ e, p: this.placeOf(e, now) }));
    drawn.push({ e: me, p: me });
    for (const { e, p } of drawn) this.drawEntity(e, sx(p.x), sy(p.z), now);
    this.drawFloaters(sx, sy, now);
  }

  drawGrid(sx, sy, width, height) {
    const ctx = this.ctx;
    const me = this.world.me;
    const step = 10;
    ctx.strokeStyle = COLOURS.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    const halfW = width / 2 / this.scale;
    const halfH = height / 2 / this.scale;
    for (let x = Math.ceil((me.x - halfW) / step) * step; x <= me.x + halfW; x += step) {
      ctx.moveTo(sx(x), 0);
      ctx.lineTo(sx(x), height);
    }
    for (let z = Math.ceil((me.z - halfH) / step) * step; z <= me.z + halfH; z += step) {
      ctx.moveTo(0, sy(z));
      ctx.lineTo(width, sy(z));
    }
    ctx.stroke();
  }

  drawTerrain(sx, sy) {
    const ctx = this.ctx;
    const zone = this.world.zone;
    const tile = zone.tile || 4;
    const s = this.scale;
    ctx.fillStyle = COLOURS.blocked;
    ctx.strokeStyle = COLOURS.blockedEdge;
    for (const [x0, z0, x1, z1] of zone.blocked || []) {
      // Snapped to the tiles the server blocks.
      const left = Math.floor(x0 / tile) * tile;
      const top = Math.floor(z0 / tile) * tile;
      const right = (Math.floor(x1 / tile) + 1) * tile;
      const bottom = (Math.floor(z1 / tile) + 1) * tile;
      ctx.fillRect(sx(left), sy(top), (right - left) * s, (bottom - top) * s);
      ctx.strokeRect(sx(left), sy(top), (right - left) * s, (bottom - top) * s);
    }
  }

  drawPortals(sx, sy) {
    const ctx = this.ctx;
    const s = this.scale;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const portal of this.world.zone.portals || []) {
      const [x0, z0, x1, z1] = portal.rect;
      ctx.fillStyle = COLOURS[portal.kind] || COLOURS.zone;
      ctx.fillRect(sx(x0), sy(z0), Math.max(2, (x1 - x0) * s), Math.max(2, (z1 - z0) * s));
      ctx.fillStyle = COLOURS.text;
      const label = portal.kind === "exit" ? "Exit" : (portal.name || portal.to);
      ctx.fillText(label, sx((x0 + x1) / 2), sy(z0) - 4);
    }
  }

  cross(x, y, colour) {
    const ctx = this.ctx;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, y - 7);
    ctx.lineTo(x, y + 7);
    ctx.moveTo(x - 5, y - 3);
    ctx.lineTo(x + 5, y - 3);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  drawEntity(e, x, y, now) {
    const ctx = this.ctx;
    const me = e === this.world.me;
    let colour = me ? COLOURS.me : e.kind === "n" ? COLOURS.npc : COLOURS.player;
    if (e.evading) colour = COLOURS.evading;
    if (e.dead) colour = COLOURS.dead;
    const radius = e.kind === "n" ? 5 : 6;
    if (this.target === e.id) {
      ctx.strokeStyle = COLOURS.target;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, radius + 4, 0, Math.PI * 2);
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, Math.PI * 2);
    ctx.fill();
    if (me && (e.vx || e.vz)) {
      // Which way it walks.
      const len = Math.hypot(e.vx, e.vz);
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + (e.vx / len) * 11, y + (e.vz / len) * 11);
      ctx.stroke();
    }
    ctx.fillStyle = COLOURS.text;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText(e.dead ? `${e.name} (dead)` : e.name, x, y - radius - 9);
    if (e.hp !== null && e.hp !== undefined && e.hpMax) {
      this.bar(x - 15, y - radius - 7, 30, 3, e.hp / e.hpMax, COLOURS.health);
    }
    if (e.cast && e.cast.end > now) {
      const f = (now - e.cast.start) / (e.cast.end - e.cast.start);
      this.bar(x - 15, y + radius + 3, 30, 3, f, COLOURS.cast);
    }
  }

  bar(x, y, w, h, fraction, colour) {
    const ctx = this.ctx;
    ctx.fillStyle = COLOURS.healthBack;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = colour;
    ctx.fillRect(x, y, w * Math.max(0, Math.min(1, fraction)), h);
  }

  drawFloaters(sx, sy, now) {
    const ctx = this.ctx;
    ctx.textAlign = "center";
    this.floaters = this.floaters.filter((f) => now - f.born < FLOATER_MS);
    for (const f of this.floaters) {
      const age = (now - f.born) / FLOATER_MS;
      ctx.globalAlpha = 1 - age;
      ctx.fillStyle = f.colour;
      ctx.font = `bold ${f.big ? 16 : 13}px system-ui, sans-serif`;
      ctx.fillText(f.text, sx(f.x) + f.jitter, sy(f.z) - 18 - age * 30);
    }
    ctx.globalAlpha = 1;
  }
}

export const FLOATER_COLOURS = COLOURS;
