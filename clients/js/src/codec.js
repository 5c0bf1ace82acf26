// The session protocol's codec: one msgpack map per message (docs/protocol.md, "Messages").

import { Decoder, Encoder } from "@msgpack/msgpack";

// Optional fields left undefined are not sent at all (the server refuses a
// nil where it expects a value).  Integers stay integers: `ct`, `k` and
// ids must not turn into floats.
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** @return the msgpack bytes (Uint8Array) of `message`. */
export function encodeMessage(message) {
  return encoder.encode(message);
}

/**
 * @param {ArrayBuffer|ArrayBufferView} data one WebSocket binary message.
 * @return the decoded message: a plain object with a string `t`.
 * @throws Error when it is not one msgpack map with a string `t`.
 */
export function decodeMessage(data) {
  const bytes = data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const message = decoder.decode(bytes);
  if (message === null || typeof message !== "object" || Array.isArray(message)
      || typeof message.t !== "string") {
    throw new Error("not a session protocol message");
  }
  return message;
}
