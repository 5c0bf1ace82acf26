// Decoding world.u: enter records, left ids, packed move records and packed combat records
// (docs/world.md "Protocol", docs/combat.md "Combat records"; the server's layouts are
// mmoshard/world/interest.py MOVE and mmoshard/world/combat/records.py RECORD).

/** Entity ids from 2^31 up are NPCs; below are character ids (players). */
export const NPC_ID_BASE = 0x80000000;

/** Bytes of one move record, `<IffhhI`: id, x, z (float32), vx, vz (int16 cm/s), ct (uint32). */
export const MOVE_RECORD_SIZE = 20;

/** Bytes of one combat record, `<BBHIIi`: kind, flags, ability, a, b, value. */
export const COMBAT_RECORD_SIZE = 16;

/** Combat record kinds (docs/combat.md, the record table). */
export const CombatKind = Object.freeze({
  CAST_START: 1,
  CAST_FINISH: 2,
  CAST_INTERRUPT: 3,
  DAMAGE: 4,
  HEAL: 5,
  HEALTH: 6,
  AURA_ON: 7,
  AURA_OFF: 8,
  DEATH: 9,
  REVIVE: 10,
  RESOURCE: 11,
  EVADE: 12,
});

/** Combat record flags. */
export const CombatFlag = Object.freeze({ CRIT: 0x01, ABSORBED: 0x02, IMMUNE: 0x04 });

const TYPES = [
  undefined, "cast_start", "cast_finish", "cast_interrupt", "damage", "heal", "health",
  "aura_on", "aura_off", "death", "revive", "resource", "evade",
];

function bytesOf(blob) {
  if (blob == null) return null;
  if (blob instanceof Uint8Array) return blob;
  if (blob instanceof ArrayBuffer) return new Uint8Array(blob);
  if (ArrayBuffer.isView(blob)) return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
  throw new TypeError("a packed record field must be binary (Uint8Array)");
}

/**
 * @return the records of `size` bytes packed in `blob` (null: none), each
 *   `decode(view, offset)`; a trailing partial record is ignored.
 */
function eachRecord(blob, size, decode) {
  const bytes = bytesOf(blob);
  const records = [];
  if (bytes === null) return records;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.byteLength / size);
  for (let i = 0, o = 0; i < n; i++, o += size) records.push(decode(view, o));
  return records;
}

/** @return "n" for an NPC's entity id, "p" for a player's. */
export function entityKind(id) {
  return id >= NPC_ID_BASE ? "n" : "p";
}

/**
 * Decode the `m` field of a world.u.
 *
 * @param {Uint8Array|ArrayBuffer} blob 20-byte little-endian records.
 * @return {Array<{id, kind, x, z, vx, vz, ct, speed, heading}>} velocities in
 *   m/s (the record's cm/s / 100); `speed` is their norm, `heading` the
 *   direction of travel in radians, `Math.atan2(vz, vx)` (0 along +x,
 *   pi/2 along +z), null when standing still; `ct` is the mover's client time
 *   (uint32 ms) its move carried.  A trailing partial record is ignored.
 */
export function decodeMoves(blob) {
  return eachRecord(blob, MOVE_RECORD_SIZE, (view, o) => {
    const id = view.getUint32(o, true);
    const vx = view.getInt16(o + 12, true) / 100;
    const vz = view.getInt16(o + 14, true) / 100;
    const speed = Math.hypot(vx, vz);
    return {
      id,
      kind: entityKind(id),
      x: view.getFloat32(o + 4, true),
      z: view.getFloat32(o + 8, true),
      vx,
      vz,
      ct: view.getUint32(o + 16, true),
      speed,
      heading: speed > 0 ? Math.atan2(vz, vx) : null,
    };
  });
}

/**
 * One combat record as an object: the raw fields (`kind`, `flags`,
 * `ability`, `a`, `b`, `value`), `type` (the kind's name in lower case,
 * "unknown" for a kind this client does not know), `entity` (the entity the
 * record is about: the caster of a cast record, the target of a damage or
 * heal, the bearer of an aura, the dead, revived or evading one, the entity
 * of a health or resource record), and the named fields of its kind:
 *
 * - cast_start: caster, target (0: none or a ground point), cast_ms
 * - cast_finish: caster, target
 * - cast_interrupt: caster, interrupter (0: it moved or stopped)
 * - damage: source, target, amount, crit, absorbed, immune
 * - heal: source, target, amount, crit
 * - health: hp, hp_max
 * - aura_on: source, bearer, duration_ms; aura_off: source, bearer
 * - death: killer (0: unknown); revive: reviver (0: released or respawned), hp
 * - resource: resource, resource_max
 * - evade: evading (true while the NPC walks home, immune)
 */
export function decodeCombatRecord(kind, flags, ability, a, b, value) {
  const event = { type: TYPES[kind] || "unknown", kind, flags, ability, a, b, value, entity: a };
  switch (kind) {
    case CombatKind.CAST_START:
      event.caster = a; event.target = b; event.cast_ms = value; break;
    case CombatKind.CAST_FINISH:
      event.caster = a; event.target = b; break;
    case CombatKind.CAST_INTERRUPT:
      event.caster = a; event.interrupter = b; break;
    case CombatKind.DAMAGE:
      event.entity = b; event.source = a; event.target = b; event.amount = value;
      event.crit = (flags & CombatFlag.CRIT) !== 0;
      event.absorbed = (flags & CombatFlag.ABSORBED) !== 0;
      event.immune = (flags & CombatFlag.IMMUNE) !== 0;
      break;
    case CombatKind.HEAL:
      event.entity = b; event.source = a; event.target = b; event.amount = value;
      event.crit = (flags & CombatFlag.CRIT) !== 0;
      break;
    case CombatKind.HEALTH:
      event.hp = value; event.hp_max = b; break;
    case CombatKind.AURA_ON:
      event.entity = b; event.source = a; event.bearer = b; event.duration_ms = value; break;
    case CombatKind.AURA_OFF:
      event.entity = b; event.source = a; event.bearer = b; break;
    case CombatKind.DEATH:
      event.entity = b; event.killer = a; break;
    case CombatKind.REVIVE:
      event.entity = b; event.reviver = a; event.hp = value; break;
    case CombatKind.RESOURCE:
      event.resource = value; event.resource_max = b; break;
    case CombatKind.EVADE:
      event.evading = value !== 0; break;
    default:
      break;
  }
  return event;
}

/**
 * Decode the `c` field of a world.u: 16-byte little-endian records, in the
 * order they came (one entity's records in the order they happened).
 * @return {Array<object>} see decodeCombatRecord.
 */
export function decodeCombatRecords(blob) {
  return eachRecord(blob, COMBAT_RECORD_SIZE, (view, o) => decodeCombatRecord(
    view.getUint8(o),
    view.getUint8(o + 1),
    view.getUint16(o + 2, true),
    view.getUint32(o + 4, true),
    view.getUint32(o + 8, true),
    view.getInt32(o + 12, true),
  ));
}

/**
 * Decode one enter record: `[id, kind, name, class, level, x, y, z, vx, vz]`,
 * followed by `hp, hp_max, dead, evading` for an entity with combat state.
 * @return {{id, kind, name, class, level, x, y, z, vx, vz, hp?, hp_max?, dead?, evading?}}
 *   (velocities in m/s as the server holds them; `dead`, `evading` booleans).
 */
export function decodeEnter(record) {
  const [id, kind, name, cls, level, x, y, z, vx, vz] = record;
  const entity = { id, kind, name, class: cls, level, x, y, z, vx, vz };
  if (record.length > 10) {
    entity.hp = record[10];
    entity.hp_max = record[11];
    entity.dead = Boolean(record[12]);
    entity.evading = Boolean(record[13]);
  }
  return entity;
}

/**
 * Decode a world.u message (or its body).
 *
 * @return {{enters: object[], left: number[], moves: object[], events: object[]}}
 *   `enters` from `e` (decodeEnter), `left` the ids of `l`, `moves` from `m`
 *   (decodeMoves), `events` from `c` (decodeCombatRecords).  An entering
 *   entity's health is taken after its records of this update: show them,
 *   do not apply them again.
 */
export function decodeWorldUpdate(body) {
  return {
    enters: (body.e || []).map(decodeEnter),
    left: body.l ? Array.from(body.l) : [],
    moves: decodeMoves(body.m),
    events: decodeCombatRecords(body.c),
  };
}
