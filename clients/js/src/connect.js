// connect(): open a session and complete its handshake.

import { SessionClient } from "./session.js";

/**
 * Connect and complete the handshake.
 *
 * @param {string} url `ws://host:port/` (a `websocket` address of the directory).
 * @param {string} token an access token.
 * @param {object} [options] `clientVersion` ("0.0.0"), `platform` ("web"),
 *   `onEvent(type, message)`, `heartbeat` (true: ping every `heartbeat_s` of
 *   the welcome and drop a link silent for three beats; a number of seconds;
 *   false: only answer the server's pings), `autoResume` (true),
 *   `alternates` (the other nodes of the role: addresses, or the directory's
 *   entries; a resume that cannot reach the node tries them in turn, and a
 *   `server.shutdown` with `resume: true` starts with the next one),
 *   `onMoved(resumed)` (the session continued on another node),
 *   `connectTimeout` (10 s), `WebSocket` (a constructor; default the global one),
 *   `busyRetries` (3: times a request answered `server.busy` is sent again
 *   after its `retry_after`, doubled each time; 0: never).
 * @return {Promise<SessionClient>} a welcomed client.
 * @throws RequestError when the server refuses the hello (its `code`), or
 *   `client.connection_lost` when the link cannot be opened.
 */
export async function connect(url, token, options = {}) {
  const client = new SessionClient(url, token, options);
  await client.connect();
  return client;
}
