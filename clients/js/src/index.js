// mmoshard-client: the JavaScript client of the mmoshard session protocol and REST API (docs/clients.md).

export { FATAL_CODES, RequestError } from "./errors.js";
export {
  call, characters, classes, createCharacter, deleteCharacter, login, logout, me, refresh, register,
} from "./rest.js";
export { SUBPROTOCOL, SessionClient } from "./session.js";
export { connect } from "./connect.js";
export {
  COMBAT_RECORD_SIZE, CombatFlag, CombatKind, MOVE_RECORD_SIZE, NPC_ID_BASE,
  decodeCombatRecord, decodeCombatRecords, decodeEnter, decodeMoves, decodeWorldUpdate, entityKind,
} from "./world.js";
export { decodeMessage, encodeMessage } from "./codec.js";
