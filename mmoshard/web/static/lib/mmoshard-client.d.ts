// Type declarations of mmoshard-client (docs/clients.md).

/** A message of the session protocol: a map with a string `t` (docs/protocol.md). */
export interface Message {
  t: string;
  id?: unknown;
  seq?: number;
  [field: string]: unknown;
}

/** The server's error: `code` is stable; the client's own codes start with `client.`. */
export class RequestError extends Error {
  constructor(
    error: { code?: string; message?: string; retry_after?: number; fields?: Record<string, unknown> },
    status?: number,
  );
  readonly code: string;
  readonly message: string;
  /** Seconds to wait before retrying, when the server said. */
  readonly retryAfter?: number;
  /** REST `request.invalid`: what is wrong with each field. */
  readonly fields?: Record<string, unknown>;
  /** The HTTP status of a REST answer. */
  readonly status?: number;
  readonly body: unknown;
}

// -- REST (docs/auth.md) ----------------------------------------------------

export interface Endpoint {
  node_id: string;
  http?: string;
  tcp?: string;
  websocket?: string;
}

export interface Tokens {
  account_id: number;
  username: string;
  session_id: string;
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  server_time: number;
  /** Role -> the live processes hosting it, least loaded first (login only). */
  directory?: Record<string, Endpoint[]>;
}

export interface Character {
  id: number;
  name: string;
  class: string;
  level: number;
  exp: number;
  zone: string;
  position: { x: number; y: number; z: number };
  created_at: number;
}

export interface CharacterClass {
  id: string;
  name: string;
  role: string;
  description: string;
}

/** One JSON call to the REST API; rejects with RequestError. */
export function call(
  method: string, httpBase: string, path: string, options?: { body?: unknown; token?: string },
): Promise<any>;
export function register(
  httpBase: string, username: string, password: string, email?: string,
): Promise<{ account_id: number; username: string }>;
export function login(httpBase: string, username: string, password: string): Promise<Tokens>;
export function refresh(httpBase: string, refreshToken: string): Promise<Tokens>;
export function logout(httpBase: string, accessToken: string): Promise<{ ended: string }>;
export function me(httpBase: string, accessToken: string): Promise<{
  account_id: number; username: string; email: string | null; created_at: number;
  session_id: string; token_expires_at: number;
}>;
export function classes(httpBase: string): Promise<{ classes: CharacterClass[]; start_zone: string }>;
export function characters(httpBase: string, accessToken: string): Promise<{ characters: Character[]; limit: number }>;
export function createCharacter(
  httpBase: string, accessToken: string, character: { name: string; cls?: string; class?: string },
): Promise<Character>;
export function deleteCharacter(
  httpBase: string, accessToken: string, characterId: number,
): Promise<{ deleted: number; name_free_at: number }>;

// -- the session ------------------------------------------------------------

/** The WebSocket subprotocol the server requires: "mmoshard.v1". */
export const SUBPROTOCOL: string;
/** Error codes after which the client does not resume. */
export const FATAL_CODES: ReadonlySet<string>;

export interface Welcome extends Message {
  t: "welcome";
  session_id: string;
  account_id: number;
  heartbeat_s: number;
  resume_token: string;
  resume_grace_s: number;
  max_frame: number;
  server_time: number;
}

/** Events the client itself emits (never sent by a server). */
export interface LinkLostEvent extends Message { t: "client.link_lost"; code: number }
export interface ResumedEvent extends Message {
  t: "client.resumed";
  replayed: number;
  resumes: number;
  /** The session continued on another node than the one that held it (client.moved follows). */
  moved: boolean;
  /** The node's address now. */
  url: string;
}
/** The `resumed` reply of the protocol (docs/protocol.md). */
export interface Resumed extends Message {
  t: "resumed";
  session_id: string;
  resume_token: string;
  heartbeat_s: number;
  replayed: number;
  server_time: number;
  /** Present (true) only when another node took the session over. */
  moved?: boolean;
}
/** The session continued on another node of the role: re-send world.enter (chat follows by itself). */
export interface MovedEvent extends Message { t: "client.moved"; url: string; moves: number; resumed: Resumed }
export interface EndedEvent extends Message { t: "client.ended"; reason: string }

export interface ConnectOptions {
  /** The client build, e.g. "1.10.0" or "ptr/1.11.0" (default "0.0.0"). */
  clientVersion?: string;
  /** e.g. "web" (the default), "windows", "bot". */
  platform?: string;
  /** Called for every event, before the `on` listeners. */
  onEvent?: (type: string, message: Message) => void;
  /**
   * true (default): ping every `heartbeat_s` of the welcome and drop a link
   * silent for three beats; a number: that many seconds; false: only answer
   * the server's pings.
   */
  heartbeat?: boolean | number;
  /** Resume after an unexpected drop, within the grace (default true). */
  autoResume?: boolean;
  /**
   * The other nodes of the role (their `websocket` addresses, or the login's
   * `directory` entries): a resume that cannot reach the node tries them in
   * turn, and after a `server.shutdown` with `resume: true` it starts with the
   * next one (default none: the same address only).
   */
  alternates?: ReadonlyArray<string | Endpoint>;
  /** Called with the `resumed` reply when the session moved to another node (as `client.moved`). */
  onMoved?: (resumed: Resumed) => void;
  /** Seconds an attempt to open the link may take (default 10). */
  connectTimeout?: number;
  /** The largest message to send until the welcome says (default 65536). */
  maxFrame?: number;
  /** A WebSocket constructor (default: the global one; in Node < 22 the ws package's). */
  WebSocket?: unknown;
}

export class SessionClient {
  constructor(url: string, token: string, options?: ConnectOptions);
  /** The node's address now (it changes when the session moves). */
  readonly url: string;
  /** The node's address first, then the alternates. */
  readonly urls: readonly string[];
  readonly welcome: Welcome | null;
  readonly sessionId: string | null;
  readonly accountId: number | null;
  /** The last round-trip time of the client's own pings, in seconds. */
  readonly rtt: number | null;
  /** How many times the session was resumed. */
  readonly resumes: number;
  /** How many of those resumes moved it to another node. */
  readonly moves: number;
  /** The highest `seq` received (events at or below it are dropped as duplicates). */
  readonly lastSeq: number;
  /** Seconds between the client's pings (null with heartbeat: false). */
  readonly heartbeatInterval: number | null;
  /** The largest message the server takes, in bytes (the welcome's max_frame). */
  maxFrame: number;
  /** Whether the link is up and the session usable (false while resuming). */
  readonly connected: boolean;
  /** Why the session ended, once it has; else null. */
  readonly endReason: string | null;
  /**
   * Resolves once the session is over for good: "closed" (close()), "shutdown"
   * (server.shutdown without resume), "disconnected" (lost with no resume possible),
   * "resume_failed" (no resume within the grace), or a server error code
   * ("session.replaced", "auth.revoked", "auth.invalid_token"...).
   */
  readonly ended: Promise<string>;
  connect(): Promise<Welcome>;
  /** Rejects with RequestError: the server's code, or client.connection_lost / client.closed / client.frame_too_large. */
  request<T = Message>(type: string, body?: Record<string, unknown>): Promise<T & Message>;
  /** A message that gets no reply; false when the link is down. */
  send(type: string, body?: Record<string, unknown>): boolean;
  on(type: "client.link_lost", fn: (message: LinkLostEvent) => void): this;
  on(type: "client.resumed", fn: (message: ResumedEvent) => void): this;
  on(type: "client.moved", fn: (message: MovedEvent) => void): this;
  on(type: "client.ended", fn: (message: EndedEvent) => void): this;
  on(type: string, fn: (message: Message) => void): this;
  off(type: string, fn: (message: any) => void): this;
  /** The next event of `type` (any when omitted) after this call; `timeout` in seconds. */
  nextEvent(type?: string, timeout?: number): Promise<Message>;
  /** Log out (bye) and close. */
  close(): Promise<void>;
  /** Drop the link without logging out, as a network failure would (the client resumes). */
  drop(): void;
}

/** Connect and say hello; rejects with RequestError when refused. */
export function connect(url: string, token: string, options?: ConnectOptions): Promise<SessionClient>;

export function encodeMessage(message: Message): Uint8Array;
export function decodeMessage(data: ArrayBuffer | ArrayBufferView): Message;

// -- world.u (docs/world.md, docs/combat.md) --------------------------------

export const NPC_ID_BASE: number;
export const MOVE_RECORD_SIZE: 20;
export const COMBAT_RECORD_SIZE: 16;
export const CombatKind: Readonly<{
  CAST_START: 1; CAST_FINISH: 2; CAST_INTERRUPT: 3; DAMAGE: 4; HEAL: 5; HEALTH: 6;
  AURA_ON: 7; AURA_OFF: 8; DEATH: 9; REVIVE: 10; RESOURCE: 11; EVADE: 12;
}>;
export const CombatFlag: Readonly<{ CRIT: 1; ABSORBED: 2; IMMUNE: 4 }>;

/** An entity entering the view: its full state (`e` of world.u). */
export interface EnterRecord {
  id: number;
  /** "p" player, "n" NPC. */
  kind: string;
  name: string;
  class: string;
  level: number;
  x: number;
  y: number;
  z: number;
  /** m/s */
  vx: number;
  vz: number;
  /** With combat state only. */
  hp?: number;
  hp_max?: number;
  dead?: boolean;
  evading?: boolean;
}

/** One move record (`m` of world.u). */
export interface MoveRecord {
  id: number;
  /** "n" for ids from 2^31 up, else "p". */
  kind: "p" | "n";
  x: number;
  z: number;
  /** m/s (the record's int16 cm/s / 100). */
  vx: number;
  vz: number;
  /** The mover's client time, uint32 ms. */
  ct: number;
  /** m/s */
  speed: number;
  /** Radians, atan2(vz, vx); null when standing still. */
  heading: number | null;
}

export type CombatEventType =
  | "cast_start" | "cast_finish" | "cast_interrupt" | "damage" | "heal" | "health"
  | "aura_on" | "aura_off" | "death" | "revive" | "resource" | "evade" | "unknown";

/** One combat record (`c` of world.u): the raw fields, `type`, `entity` and the kind's named fields. */
export interface CombatEvent {
  type: CombatEventType;
  kind: number;
  flags: number;
  /** The ability's `num` (0: an NPC's melee swing, or none). */
  ability: number;
  a: number;
  b: number;
  value: number;
  /** The entity the record is about (group a client's records by it). */
  entity: number;
  caster?: number;
  target?: number;
  source?: number;
  bearer?: number;
  interrupter?: number;
  killer?: number;
  reviver?: number;
  cast_ms?: number;
  duration_ms?: number;
  amount?: number;
  crit?: boolean;
  absorbed?: boolean;
  immune?: boolean;
  hp?: number;
  hp_max?: number;
  resource?: number;
  resource_max?: number;
  evading?: boolean;
}

export interface WorldUpdate {
  enters: EnterRecord[];
  left: number[];
  moves: MoveRecord[];
  events: CombatEvent[];
}

/** Decode a world.u message (or its body). */
export function decodeWorldUpdate(body: { e?: unknown[][]; l?: number[]; m?: Uint8Array; c?: Uint8Array }): WorldUpdate;
export function decodeMoves(blob: Uint8Array | ArrayBuffer | null | undefined): MoveRecord[];
export function decodeCombatRecords(blob: Uint8Array | ArrayBuffer | null | undefined): CombatEvent[];
export function decodeCombatRecord(
  kind: number, flags: number, ability: number, a: number, b: number, value: number,
): CombatEvent;
export function decodeEnter(record: unknown[]): EnterRecord;
export function entityKind(id: number): "p" | "n";
