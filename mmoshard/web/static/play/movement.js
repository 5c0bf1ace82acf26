// Keyboard movement: the character is moved on the client at once (prediction), world.move goes out 5 times a second, and the server's corrections are applied.

export const SEND_INTERVAL_MS = 200; // 5 Hz (docs/world.md)
// A little under the zone's max_speed, so that jitter never makes a move too fast.
const SPEED_FACTOR = 0.9;

const DIRECTIONS = {
  KeyW: [0, -1], ArrowUp: [0, -1], KeyS: [0, 1], ArrowDown: [0, 1],
  KeyA: [-1, 0], ArrowLeft: [-1, 0], KeyD: [1, 0], ArrowRight: [1, 0],
};

/** Whether a key press belongs to a text field rather than to the game. */
export function typing(event) {
  const target = event.target;
  return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT"
    || target.isContentEditable);
}

export class Movement {
  /**
   * @param world the World (me, zone, terrain checks).
   * @param sendMove (body) => void: world.move to the server.
   * @param onMoved () => void: the character moved (a cast in progress ends).
   */
  constructor(world, sendMove, onMoved = () => {}) {
    this.world = world;
    this.sendMove = sendMove;
    this.onMoved = onMoved;
    this.keys = new Set();
    this.k = 0; // the last correction applied
    this.lastSent = 0;
    this.moving = false;
    this.sentMoving = false; // the last world.move had a velocity
    this.dirty = false; // moved since the last world.move
    this.frozen = false; // dead, or between zones
    this.sent = 0;
    this.corrections = 0;
  }

  keyDown(event) {
    if (typing(event) || !(event.code in DIRECTIONS)) return;
    this.keys.add(event.code);
    event.preventDefault();
  }

  keyUp(event) {
    this.keys.delete(event.code);
  }

  /** Hold keys as if pressed (tests and scripted walks): e.g. press(["KeyD"]). */
  press(codes) {
    this.keys = new Set(codes);
  }

  direction() {
    let dx = 0;
    let dz = 0;
    for (const code of this.keys) {
      const d = DIRECTIONS[code];
      if (d) {
        dx += d[0];
        dz += d[1];
      }
    }
    const length = Math.hypot(dx, dz);
    return length ? [dx / length, dz / length] : [0, 0];
  }

  /** Advance by `dt` seconds at time `now` (ms): move the character, and send a move when due. */
  frame(dt, now) {
    const world = this.world;
    const me = world.me;
    if (!me || !world.zone || this.frozen || me.dead) {
      this.moving = false;
      return;
    }
    const [dx, dz] = this.direction();
    const speed = world.zone.max_speed * SPEED_FACTOR;
    let vx = dx * speed;
    let vz = dz * speed;
    if (vx || vz) {
      const step = Math.min(dt, 0.1);
      const [width, depth] = world.zone.size;
      const clamp = (v, max) => Math.max(0.01, Math.min(max - 0.01, v));
      let x = clamp(me.x + vx * step, width);
      let z = clamp(me.z + vz * step, depth);
      if (world.pathBlocked(me.x, me.z, x, z)) {
        // Slide along the wall: keep whichever axis is free.
        if (!world.pathBlocked(me.x, me.z, x, me.z)) {
          z = me.z;
          vz = 0;
        } else if (!world.pathBlocked(me.x, me.z, me.x, z)) {
          x = me.x;
          vx = 0;
        } else {
          x = me.x;
          z = me.z;
          vx = vz = 0;
        }
      }
      if (x !== me.x || z !== me.z) {
        me.x = x;
        me.z = z;
        this.dirty = true;
        this.onMoved();
      }
    }
    me.vx = vx;
    me.vz = vz;
    this.moving = Boolean(vx || vz);
    // A move when it moved since the last one, or once with no velocity when it stopped.
    if (now - this.lastSent >= SEND_INTERVAL_MS && (this.dirty || (this.sentMoving && !this.moving))) {
      this.send(now);
    }
  }

  send(now) {
    const me = this.world.me;
    this.lastSent = now;
    this.dirty = false;
    this.sent++;
    this.sentMoving = Boolean(me.vx || me.vz);
    this.sendMove({ x: me.x, z: me.z, vx: me.vx || 0, vz: me.vz || 0, ct: Math.floor(now) >>> 0, k: this.k });
  }

  /** world.correct {x, y, z, k, why}: snap there, and send k from now on. */
  correct(body) {
    const me = this.world.me;
    if (!me) return;
    me.x = body.x;
    me.z = body.z;
    this.k = body.k;
    this.corrections++;
    this.dirty = false;
  }

  /** A new place (world.enter, world.zone, world.reset, world.release): where and which k. */
  placed(body) {
    this.k = body.k ?? this.k;
    this.dirty = false;
    this.moving = false;
    this.sentMoving = false;
  }
}
