// mmoshard-client: the JavaScript client of the mmoshard session protocol (docs/clients.md).
// Generated from clients/js by `npm run build` (esbuild); do not edit. Bundles @msgpack/msgpack (ISC).
var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// src/errors.js
var RequestError = class extends Error {
  /**
   * @param {{code?: string, message?: string, retry_after?: number, fields?: object}} error
   *   the server's error: a session protocol `error` message or a REST
   *   error body's `error` object.
   * @param {number} [status] the HTTP status of a REST answer.
   */
  constructor(error, status) {
    const code = error && error.code || "client.unknown_error";
    const message = error && error.message || "";
    super(message ? `${code}: ${message}` : code);
    this.name = "RequestError";
    this.code = code;
    this.message = message;
    this.retryAfter = error && typeof error.retry_after === "number" ? error.retry_after : void 0;
    this.fields = error && error.fields || void 0;
    this.status = status;
    this.body = error;
  }
};
var CONNECTION_LOST = "client.connection_lost";
var CLOSED = "client.closed";
var FRAME_TOO_LARGE = "client.frame_too_large";
var HTTP_FAILED = "client.http_failed";
var TIMEOUT = "client.timeout";
function clientError(code, message) {
  return new RequestError({ code, message });
}
var FATAL_CODES = /* @__PURE__ */ new Set([
  "auth.invalid_token",
  "auth.revoked",
  "version.update_required",
  "server.maintenance",
  "session.replaced",
  "session.resume_failed",
  "protocol.not_authenticated",
  "server.ip_limit",
  "server.full"
]);

// src/rest.js
function url(httpBase, path) {
  const base = (httpBase || "").replace(/\/+$/, "");
  return base + path;
}
async function call(method, httpBase, path, { body, token } = {}) {
  const headers = { accept: "application/json" };
  const init = { method, headers };
  if (body !== void 0) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url(httpBase, path), init);
  } catch (e) {
    throw new RequestError({ code: HTTP_FAILED, message: String(e && e.message || e) });
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = parsed && typeof parsed.error === "object" && parsed.error || {};
    const retry = response.headers.get("retry-after");
    throw new RequestError({
      code: error.code || `http.${response.status}`,
      message: error.message || text.slice(0, 200),
      fields: error.fields,
      retry_after: error.retry_after ?? (retry !== null && retry !== "" ? Number(retry) : void 0)
    }, response.status);
  }
  return parsed;
}
function register(httpBase, username, password, email) {
  const body = { username, password };
  if (email) body.email = email;
  return call("POST", httpBase, "/v1/accounts", { body });
}
function login(httpBase, username, password) {
  return call("POST", httpBase, "/v1/sessions", { body: { username, password } });
}
function refresh(httpBase, refreshToken) {
  return call("POST", httpBase, "/v1/sessions/refresh", { body: { refresh_token: refreshToken } });
}
function logout(httpBase, accessToken) {
  return call("DELETE", httpBase, "/v1/sessions", { token: accessToken });
}
function me(httpBase, accessToken) {
  return call("GET", httpBase, "/v1/accounts/me", { token: accessToken });
}
function classes(httpBase) {
  return call("GET", httpBase, "/v1/classes");
}
function characters(httpBase, accessToken) {
  return call("GET", httpBase, "/v1/characters", { token: accessToken });
}
function createCharacter(httpBase, accessToken, character) {
  const cls = character.cls !== void 0 ? character.cls : character.class;
  return call("POST", httpBase, "/v1/characters", {
    token: accessToken,
    body: { name: character.name, class: cls }
  });
}
function deleteCharacter(httpBase, accessToken, characterId) {
  return call("DELETE", httpBase, `/v1/characters/${encodeURIComponent(characterId)}`, {
    token: accessToken
  });
}

// src/busy.js
var SERVER_BUSY = "server.busy";
var MAX_WAIT = 8;
var BusyRetry = class {
  /**
   * @param {number} retries how many times one request is sent again (0: never).
   * @param {function} again `again(entry)` sends the session's pending entry again.
   */
  constructor(retries, again) {
    this.retries = retries;
    this.again = again;
    this._waiting = /* @__PURE__ */ new Map();
  }
  /**
   * The request of `entry` was answered `error`.
   * @return {boolean} true when it will be sent again (the entry stays unsettled).
   */
  take(entry, error) {
    const tries = entry.busyTries ?? 0;
    if (error.code !== SERVER_BUSY || entry.handshake || tries >= this.retries) return false;
    entry.busyTries = tries + 1;
    const base = typeof error.retry_after === "number" && error.retry_after > 0 ? error.retry_after : 1;
    const wait = Math.min(MAX_WAIT, base * 2 ** tries) * (0.5 + Math.random() / 2);
    this._waiting.set(entry, setTimeout(() => {
      this._waiting.delete(entry);
      this.again(entry);
    }, wait * 1e3));
    return true;
  }
  /** The session ended: every request waiting to be sent again fails with `error`. */
  fail(error) {
    const entries = [...this._waiting.entries()];
    this._waiting.clear();
    for (const [entry, timer] of entries) {
      clearTimeout(timer);
      entry.reject(error);
    }
  }
};

// src/held.js
var HeldRequests = class {
  constructor() {
    this.holding = false;
    this._entries = [];
  }
  /** A request made while holding: sent after the resume. */
  hold(entry) {
    this._entries.push(entry);
  }
  /**
   * The stop notice `notice` arrived: hold what comes from now on, and when
   * it says what it did not take (`pending`), take out of `pending` (the
   * session's map of requests without an answer) every request to send again.
   */
  stopping(notice, pending) {
    this.holding = true;
    if (!Array.isArray(notice.pending)) return;
    const unanswered = new Set(Array.isArray(notice.unanswered) ? notice.unanswered : []);
    for (const [id, entry] of [...pending]) {
      if (unanswered.has(id) || entry.handshake) continue;
      pending.delete(id);
      this._entries.push(entry);
    }
  }
  /** @return the held requests, oldest first, no longer held. */
  release() {
    const entries = this._entries.sort((a, b) => a.message.id - b.message.id);
    this._entries = [];
    this.holding = false;
    return entries;
  }
  /** The session resumed: send every held request again with `write`, each back in `pending`. */
  resend(pending, write) {
    for (const entry of this.release()) {
      pending.set(entry.message.id, entry);
      try {
        write(entry.message);
      } catch (e) {
        pending.delete(entry.message.id);
        entry.reject(e);
      }
    }
  }
  /** The session ended: every held request fails with `error`. */
  fail(error) {
    for (const entry of this.release()) entry.reject(error);
  }
};

// node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function utf8Count(str) {
  const strLength = str.length;
  let byteLength = 0;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      byteLength++;
      continue;
    } else if ((value & 4294965248) === 0) {
      byteLength += 2;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        byteLength += 3;
      } else {
        byteLength += 4;
      }
    }
  }
  return byteLength;
}
function utf8EncodeJs(str, output, outputOffset) {
  const strLength = str.length;
  let offset = outputOffset;
  let pos = 0;
  while (pos < strLength) {
    let value = str.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      output[offset++] = value;
      continue;
    } else if ((value & 4294965248) === 0) {
      output[offset++] = value >> 6 & 31 | 192;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        output[offset++] = value >> 12 & 15 | 224;
        output[offset++] = value >> 6 & 63 | 128;
      } else {
        output[offset++] = value >> 18 & 7 | 240;
        output[offset++] = value >> 12 & 63 | 128;
        output[offset++] = value >> 6 & 63 | 128;
      }
    }
    output[offset++] = value & 63 | 128;
  }
}
var sharedTextEncoder = new TextEncoder();
var TEXT_ENCODER_THRESHOLD = 50;
function utf8EncodeTE(str, output, outputOffset) {
  sharedTextEncoder.encodeInto(str, output.subarray(outputOffset));
}
function utf8Encode(str, output, outputOffset) {
  if (str.length > TEXT_ENCODER_THRESHOLD) {
    utf8EncodeTE(str, output, outputOffset);
  } else {
    utf8EncodeJs(str, output, outputOffset);
  }
}
var CHUNK_SIZE = 4096;
function utf8DecodeJs(bytes, inputOffset, byteLength) {
  let offset = inputOffset;
  const end = offset + byteLength;
  const units = [];
  let result = "";
  while (offset < end) {
    const byte1 = bytes[offset++];
    if ((byte1 & 128) === 0) {
      units.push(byte1);
    } else if ((byte1 & 224) === 192) {
      const byte2 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 6 | byte2);
    } else if ((byte1 & 240) === 224) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 12 | byte2 << 6 | byte3);
    } else if ((byte1 & 248) === 240) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      const byte4 = bytes[offset++] & 63;
      let unit = (byte1 & 7) << 18 | byte2 << 12 | byte3 << 6 | byte4;
      if (unit > 65535) {
        unit -= 65536;
        units.push(unit >>> 10 & 1023 | 55296);
        unit = 56320 | unit & 1023;
      }
      units.push(unit);
    } else {
      units.push(byte1);
    }
    if (units.length >= CHUNK_SIZE) {
      result += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  if (units.length > 0) {
    result += String.fromCharCode(...units);
  }
  return result;
}
var sharedTextDecoder = new TextDecoder();
var TEXT_DECODER_THRESHOLD = 200;
function utf8DecodeTD(bytes, inputOffset, byteLength) {
  const stringBytes = bytes.subarray(inputOffset, inputOffset + byteLength);
  return sharedTextDecoder.decode(stringBytes);
}
function utf8Decode(bytes, inputOffset, byteLength) {
  if (byteLength > TEXT_DECODER_THRESHOLD) {
    return utf8DecodeTD(bytes, inputOffset, byteLength);
  } else {
    return utf8DecodeJs(bytes, inputOffset, byteLength);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var ExtData = class {
  constructor(type, data) {
    __publicField(this, "type");
    __publicField(this, "data");
    this.type = type;
    this.data = data;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/DecodeError.mjs
var DecodeError = class _DecodeError extends Error {
  constructor(message) {
    super(message);
    const proto = Object.create(_DecodeError.prototype);
    Object.setPrototypeOf(this, proto);
    Object.defineProperty(this, "name", {
      configurable: true,
      enumerable: false,
      value: _DecodeError.name
    });
  }
};

// node_modules/@msgpack/msgpack/dist.esm/utils/int.mjs
var UINT32_MAX = 4294967295;
function setUint64(view, offset, value) {
  const high = value / 4294967296;
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function setInt64(view, offset, value) {
  const high = Math.floor(value / 4294967296);
  const low = value;
  view.setUint32(offset, high);
  view.setUint32(offset + 4, low);
}
function getInt64(view, offset) {
  const high = view.getInt32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}
function getUint64(view, offset) {
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  return high * 4294967296 + low;
}

// node_modules/@msgpack/msgpack/dist.esm/timestamp.mjs
var EXT_TIMESTAMP = -1;
var TIMESTAMP32_MAX_SEC = 4294967296 - 1;
var TIMESTAMP64_MAX_SEC = 17179869184 - 1;
function encodeTimeSpecToTimestamp({ sec, nsec }) {
  if (sec >= 0 && nsec >= 0 && sec <= TIMESTAMP64_MAX_SEC) {
    if (nsec === 0 && sec <= TIMESTAMP32_MAX_SEC) {
      const rv = new Uint8Array(4);
      const view = new DataView(rv.buffer);
      view.setUint32(0, sec);
      return rv;
    } else {
      const secHigh = sec / 4294967296;
      const secLow = sec & 4294967295;
      const rv = new Uint8Array(8);
      const view = new DataView(rv.buffer);
      view.setUint32(0, nsec << 2 | secHigh & 3);
      view.setUint32(4, secLow);
      return rv;
    }
  } else {
    const rv = new Uint8Array(12);
    const view = new DataView(rv.buffer);
    view.setUint32(0, nsec);
    setInt64(view, 4, sec);
    return rv;
  }
}
function encodeDateToTimeSpec(date) {
  const msec = date.getTime();
  const sec = Math.floor(msec / 1e3);
  const nsec = (msec - sec * 1e3) * 1e6;
  const nsecInSec = Math.floor(nsec / 1e9);
  return {
    sec: sec + nsecInSec,
    nsec: nsec - nsecInSec * 1e9
  };
}
function encodeTimestampExtension(object) {
  if (object instanceof Date) {
    const timeSpec = encodeDateToTimeSpec(object);
    return encodeTimeSpecToTimestamp(timeSpec);
  } else {
    return null;
  }
}
function decodeTimestampToTimeSpec(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data.byteLength) {
    case 4: {
      const sec = view.getUint32(0);
      const nsec = 0;
      return { sec, nsec };
    }
    case 8: {
      const nsec30AndSecHigh2 = view.getUint32(0);
      const secLow32 = view.getUint32(4);
      const sec = (nsec30AndSecHigh2 & 3) * 4294967296 + secLow32;
      const nsec = nsec30AndSecHigh2 >>> 2;
      return { sec, nsec };
    }
    case 12: {
      const sec = getInt64(view, 4);
      const nsec = view.getUint32(0);
      return { sec, nsec };
    }
    default:
      throw new DecodeError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${data.length}`);
  }
}
function decodeTimestampExtension(data) {
  const timeSpec = decodeTimestampToTimeSpec(data);
  return new Date(timeSpec.sec * 1e3 + timeSpec.nsec / 1e6);
}
var timestampExtension = {
  type: EXT_TIMESTAMP,
  encode: encodeTimestampExtension,
  decode: decodeTimestampExtension
};

// node_modules/@msgpack/msgpack/dist.esm/ExtensionCodec.mjs
var _ExtensionCodec = class _ExtensionCodec {
  constructor() {
    // ensures ExtensionCodecType<X> matches ExtensionCodec<X>
    // this will make type errors a lot more clear
    // eslint-disable-next-line @typescript-eslint/naming-convention
    __publicField(this, "__brand");
    // built-in extensions
    __publicField(this, "builtInEncoders", []);
    __publicField(this, "builtInDecoders", []);
    // custom extensions
    __publicField(this, "encoders", []);
    __publicField(this, "decoders", []);
    this.register(timestampExtension);
  }
  register({ type, encode, decode }) {
    if (type >= 0) {
      this.encoders[type] = encode;
      this.decoders[type] = decode;
    } else {
      const index = -1 - type;
      this.builtInEncoders[index] = encode;
      this.builtInDecoders[index] = decode;
    }
  }
  tryToEncode(object, context) {
    for (let i = 0; i < this.builtInEncoders.length; i++) {
      const encodeExt = this.builtInEncoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = -1 - i;
          return new ExtData(type, data);
        }
      }
    }
    for (let i = 0; i < this.encoders.length; i++) {
      const encodeExt = this.encoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context);
        if (data != null) {
          const type = i;
          return new ExtData(type, data);
        }
      }
    }
    if (object instanceof ExtData) {
      return object;
    }
    return null;
  }
  decode(data, type, context) {
    const decodeExt = type < 0 ? this.builtInDecoders[-1 - type] : this.decoders[type];
    if (decodeExt) {
      return decodeExt(data, type, context);
    } else {
      return new ExtData(type, data);
    }
  }
};
__publicField(_ExtensionCodec, "defaultCodec", new _ExtensionCodec());
var ExtensionCodec = _ExtensionCodec;

// node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function isArrayBufferLike(buffer) {
  return buffer instanceof ArrayBuffer || typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}
function ensureUint8Array(buffer) {
  if (buffer instanceof Uint8Array) {
    return buffer;
  } else if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else if (isArrayBufferLike(buffer)) {
    return new Uint8Array(buffer);
  } else {
    return Uint8Array.from(buffer);
  }
}

// node_modules/@msgpack/msgpack/dist.esm/Encoder.mjs
var DEFAULT_MAX_DEPTH = 100;
var DEFAULT_INITIAL_BUFFER_SIZE = 2048;
var Encoder = class _Encoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "maxDepth");
    __publicField(this, "initialBufferSize");
    __publicField(this, "sortKeys");
    __publicField(this, "forceFloat32");
    __publicField(this, "ignoreUndefined");
    __publicField(this, "forceIntegerToFloat");
    __publicField(this, "pos");
    __publicField(this, "view");
    __publicField(this, "bytes");
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.initialBufferSize = options?.initialBufferSize ?? DEFAULT_INITIAL_BUFFER_SIZE;
    this.sortKeys = options?.sortKeys ?? false;
    this.forceFloat32 = options?.forceFloat32 ?? false;
    this.ignoreUndefined = options?.ignoreUndefined ?? false;
    this.forceIntegerToFloat = options?.forceIntegerToFloat ?? false;
    this.pos = 0;
    this.view = new DataView(new ArrayBuffer(this.initialBufferSize));
    this.bytes = new Uint8Array(this.view.buffer);
  }
  clone() {
    return new _Encoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      maxDepth: this.maxDepth,
      initialBufferSize: this.initialBufferSize,
      sortKeys: this.sortKeys,
      forceFloat32: this.forceFloat32,
      ignoreUndefined: this.ignoreUndefined,
      forceIntegerToFloat: this.forceIntegerToFloat
    });
  }
  reinitializeState() {
    this.pos = 0;
  }
  /**
   * This is almost equivalent to {@link Encoder#encode}, but it returns an reference of the encoder's internal buffer and thus much faster than {@link Encoder#encode}.
   *
   * @returns Encodes the object and returns a shared reference the encoder's internal buffer.
   */
  encodeSharedRef(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encodeSharedRef(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  /**
   * @returns Encodes the object and returns a copy of the encoder's internal buffer.
   */
  encode(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encode(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.slice(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  doEncode(object, depth) {
    if (depth > this.maxDepth) {
      throw new Error(`Too deep objects in depth ${depth}`);
    }
    if (object == null) {
      this.encodeNil();
    } else if (typeof object === "boolean") {
      this.encodeBoolean(object);
    } else if (typeof object === "number") {
      if (!this.forceIntegerToFloat) {
        this.encodeNumber(object);
      } else {
        this.encodeNumberAsFloat(object);
      }
    } else if (typeof object === "string") {
      this.encodeString(object);
    } else if (this.useBigInt64 && typeof object === "bigint") {
      this.encodeBigInt64(object);
    } else {
      this.encodeObject(object, depth);
    }
  }
  ensureBufferSizeToWrite(sizeToWrite) {
    const requiredSize = this.pos + sizeToWrite;
    if (this.view.byteLength < requiredSize) {
      this.resizeBuffer(requiredSize * 2);
    }
  }
  resizeBuffer(newSize) {
    const newBuffer = new ArrayBuffer(newSize);
    const newBytes = new Uint8Array(newBuffer);
    const newView = new DataView(newBuffer);
    newBytes.set(this.bytes);
    this.view = newView;
    this.bytes = newBytes;
  }
  encodeNil() {
    this.writeU8(192);
  }
  encodeBoolean(object) {
    if (object === false) {
      this.writeU8(194);
    } else {
      this.writeU8(195);
    }
  }
  encodeNumber(object) {
    if (!this.forceIntegerToFloat && Number.isSafeInteger(object)) {
      if (object >= 0) {
        if (object < 128) {
          this.writeU8(object);
        } else if (object < 256) {
          this.writeU8(204);
          this.writeU8(object);
        } else if (object < 65536) {
          this.writeU8(205);
          this.writeU16(object);
        } else if (object < 4294967296) {
          this.writeU8(206);
          this.writeU32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(207);
          this.writeU64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      } else {
        if (object >= -32) {
          this.writeU8(224 | object + 32);
        } else if (object >= -128) {
          this.writeU8(208);
          this.writeI8(object);
        } else if (object >= -32768) {
          this.writeU8(209);
          this.writeI16(object);
        } else if (object >= -2147483648) {
          this.writeU8(210);
          this.writeI32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(211);
          this.writeI64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      }
    } else {
      this.encodeNumberAsFloat(object);
    }
  }
  encodeNumberAsFloat(object) {
    if (this.forceFloat32) {
      this.writeU8(202);
      this.writeF32(object);
    } else {
      this.writeU8(203);
      this.writeF64(object);
    }
  }
  encodeBigInt64(object) {
    if (object >= BigInt(0)) {
      this.writeU8(207);
      this.writeBigUint64(object);
    } else {
      this.writeU8(211);
      this.writeBigInt64(object);
    }
  }
  writeStringHeader(byteLength) {
    if (byteLength < 32) {
      this.writeU8(160 + byteLength);
    } else if (byteLength < 256) {
      this.writeU8(217);
      this.writeU8(byteLength);
    } else if (byteLength < 65536) {
      this.writeU8(218);
      this.writeU16(byteLength);
    } else if (byteLength < 4294967296) {
      this.writeU8(219);
      this.writeU32(byteLength);
    } else {
      throw new Error(`Too long string: ${byteLength} bytes in UTF-8`);
    }
  }
  encodeString(object) {
    const maxHeaderSize = 1 + 4;
    const byteLength = utf8Count(object);
    this.ensureBufferSizeToWrite(maxHeaderSize + byteLength);
    this.writeStringHeader(byteLength);
    utf8Encode(object, this.bytes, this.pos);
    this.pos += byteLength;
  }
  encodeObject(object, depth) {
    const ext = this.extensionCodec.tryToEncode(object, this.context);
    if (ext != null) {
      this.encodeExtension(ext);
    } else if (Array.isArray(object)) {
      this.encodeArray(object, depth);
    } else if (ArrayBuffer.isView(object)) {
      this.encodeBinary(object);
    } else if (typeof object === "object") {
      this.encodeMap(object, depth);
    } else {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(object)}`);
    }
  }
  encodeBinary(object) {
    const size = object.byteLength;
    if (size < 256) {
      this.writeU8(196);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(197);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(198);
      this.writeU32(size);
    } else {
      throw new Error(`Too large binary: ${size}`);
    }
    const bytes = ensureUint8Array(object);
    this.writeU8a(bytes);
  }
  encodeArray(object, depth) {
    const size = object.length;
    if (size < 16) {
      this.writeU8(144 + size);
    } else if (size < 65536) {
      this.writeU8(220);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(221);
      this.writeU32(size);
    } else {
      throw new Error(`Too large array: ${size}`);
    }
    for (const item of object) {
      this.doEncode(item, depth + 1);
    }
  }
  countWithoutUndefined(object, keys) {
    let count = 0;
    for (const key of keys) {
      if (object[key] !== void 0) {
        count++;
      }
    }
    return count;
  }
  encodeMap(object, depth) {
    const keys = Object.keys(object);
    if (this.sortKeys) {
      keys.sort();
    }
    const size = this.ignoreUndefined ? this.countWithoutUndefined(object, keys) : keys.length;
    if (size < 16) {
      this.writeU8(128 + size);
    } else if (size < 65536) {
      this.writeU8(222);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(223);
      this.writeU32(size);
    } else {
      throw new Error(`Too large map object: ${size}`);
    }
    for (const key of keys) {
      const value = object[key];
      if (!(this.ignoreUndefined && value === void 0)) {
        this.encodeString(key);
        this.doEncode(value, depth + 1);
      }
    }
  }
  encodeExtension(ext) {
    if (typeof ext.data === "function") {
      const data = ext.data(this.pos + 6);
      const size2 = data.length;
      if (size2 >= 4294967296) {
        throw new Error(`Too large extension object: ${size2}`);
      }
      this.writeU8(201);
      this.writeU32(size2);
      this.writeI8(ext.type);
      this.writeU8a(data);
      return;
    }
    const size = ext.data.length;
    if (size === 1) {
      this.writeU8(212);
    } else if (size === 2) {
      this.writeU8(213);
    } else if (size === 4) {
      this.writeU8(214);
    } else if (size === 8) {
      this.writeU8(215);
    } else if (size === 16) {
      this.writeU8(216);
    } else if (size < 256) {
      this.writeU8(199);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(200);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(201);
      this.writeU32(size);
    } else {
      throw new Error(`Too large extension object: ${size}`);
    }
    this.writeI8(ext.type);
    this.writeU8a(ext.data);
  }
  writeU8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setUint8(this.pos, value);
    this.pos++;
  }
  writeU8a(values) {
    const size = values.length;
    this.ensureBufferSizeToWrite(size);
    this.bytes.set(values, this.pos);
    this.pos += size;
  }
  writeI8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setInt8(this.pos, value);
    this.pos++;
  }
  writeU16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  writeI16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setInt16(this.pos, value);
    this.pos += 2;
  }
  writeU32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  writeI32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setInt32(this.pos, value);
    this.pos += 4;
  }
  writeF32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setFloat32(this.pos, value);
    this.pos += 4;
  }
  writeF64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }
  writeU64(value) {
    this.ensureBufferSizeToWrite(8);
    setUint64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeI64(value) {
    this.ensureBufferSizeToWrite(8);
    setInt64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeBigUint64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigUint64(this.pos, value);
    this.pos += 8;
  }
  writeBigInt64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigInt64(this.pos, value);
    this.pos += 8;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function prettyByte(byte) {
  return `${byte < 0 ? "-" : ""}0x${Math.abs(byte).toString(16).padStart(2, "0")}`;
}

// node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var DEFAULT_MAX_KEY_LENGTH = 16;
var DEFAULT_MAX_LENGTH_PER_KEY = 16;
var CachedKeyDecoder = class {
  constructor(maxKeyLength = DEFAULT_MAX_KEY_LENGTH, maxLengthPerKey = DEFAULT_MAX_LENGTH_PER_KEY) {
    __publicField(this, "hit", 0);
    __publicField(this, "miss", 0);
    __publicField(this, "caches");
    __publicField(this, "maxKeyLength");
    __publicField(this, "maxLengthPerKey");
    this.maxKeyLength = maxKeyLength;
    this.maxLengthPerKey = maxLengthPerKey;
    this.caches = [];
    for (let i = 0; i < this.maxKeyLength; i++) {
      this.caches.push([]);
    }
  }
  canBeCached(byteLength) {
    return byteLength > 0 && byteLength <= this.maxKeyLength;
  }
  find(bytes, inputOffset, byteLength) {
    const records = this.caches[byteLength - 1];
    FIND_CHUNK: for (const record of records) {
      const recordBytes = record.bytes;
      for (let j = 0; j < byteLength; j++) {
        if (recordBytes[j] !== bytes[inputOffset + j]) {
          continue FIND_CHUNK;
        }
      }
      return record.str;
    }
    return null;
  }
  store(bytes, value) {
    const records = this.caches[bytes.length - 1];
    const record = { bytes, str: value };
    if (records.length >= this.maxLengthPerKey) {
      records[Math.random() * records.length | 0] = record;
    } else {
      records.push(record);
    }
  }
  decode(bytes, inputOffset, byteLength) {
    const cachedValue = this.find(bytes, inputOffset, byteLength);
    if (cachedValue != null) {
      this.hit++;
      return cachedValue;
    }
    this.miss++;
    const str = utf8DecodeJs(bytes, inputOffset, byteLength);
    const slicedCopyOfBytes = Uint8Array.prototype.slice.call(bytes, inputOffset, inputOffset + byteLength);
    this.store(slicedCopyOfBytes, str);
    return str;
  }
};

// node_modules/@msgpack/msgpack/dist.esm/Decoder.mjs
var STATE_ARRAY = "array";
var STATE_MAP_KEY = "map_key";
var STATE_MAP_VALUE = "map_value";
var mapKeyConverter = (key) => {
  if (typeof key === "string" || typeof key === "number") {
    return key;
  }
  throw new DecodeError("The type of key must be string or number but " + typeof key);
};
var StackPool = class {
  constructor() {
    __publicField(this, "stack", []);
    __publicField(this, "stackHeadPosition", -1);
  }
  get length() {
    return this.stackHeadPosition + 1;
  }
  top() {
    return this.stack[this.stackHeadPosition];
  }
  pushArrayState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_ARRAY;
    state.position = 0;
    state.size = size;
    state.array = new Array(size);
  }
  pushMapState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_MAP_KEY;
    state.readCount = 0;
    state.size = size;
    state.map = {};
  }
  getUninitializedStateFromPool() {
    this.stackHeadPosition++;
    if (this.stackHeadPosition === this.stack.length) {
      const partialState = {
        type: void 0,
        size: 0,
        array: void 0,
        position: 0,
        readCount: 0,
        map: void 0,
        key: null
      };
      this.stack.push(partialState);
    }
    return this.stack[this.stackHeadPosition];
  }
  release(state) {
    const topStackState = this.stack[this.stackHeadPosition];
    if (topStackState !== state) {
      throw new Error("Invalid stack state. Released state is not on top of the stack.");
    }
    if (state.type === STATE_ARRAY) {
      const partialState = state;
      partialState.size = 0;
      partialState.array = void 0;
      partialState.position = 0;
      partialState.type = void 0;
    }
    if (state.type === STATE_MAP_KEY || state.type === STATE_MAP_VALUE) {
      const partialState = state;
      partialState.size = 0;
      partialState.map = void 0;
      partialState.readCount = 0;
      partialState.type = void 0;
    }
    this.stackHeadPosition--;
  }
  reset() {
    this.stack.length = 0;
    this.stackHeadPosition = -1;
  }
};
var HEAD_BYTE_REQUIRED = -1;
var EMPTY_VIEW = new DataView(new ArrayBuffer(0));
var EMPTY_BYTES = new Uint8Array(EMPTY_VIEW.buffer);
try {
  EMPTY_VIEW.getInt8(0);
} catch (e) {
  if (!(e instanceof RangeError)) {
    throw new Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
  }
}
var MORE_DATA = new RangeError("Insufficient data");
var sharedCachedKeyDecoder = new CachedKeyDecoder();
var Decoder = class _Decoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "rawStrings");
    __publicField(this, "maxStrLength");
    __publicField(this, "maxBinLength");
    __publicField(this, "maxArrayLength");
    __publicField(this, "maxMapLength");
    __publicField(this, "maxExtLength");
    __publicField(this, "keyDecoder");
    __publicField(this, "mapKeyConverter");
    __publicField(this, "totalPos", 0);
    __publicField(this, "pos", 0);
    __publicField(this, "view", EMPTY_VIEW);
    __publicField(this, "bytes", EMPTY_BYTES);
    __publicField(this, "headByte", HEAD_BYTE_REQUIRED);
    __publicField(this, "stack", new StackPool());
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.rawStrings = options?.rawStrings ?? false;
    this.maxStrLength = options?.maxStrLength ?? UINT32_MAX;
    this.maxBinLength = options?.maxBinLength ?? UINT32_MAX;
    this.maxArrayLength = options?.maxArrayLength ?? UINT32_MAX;
    this.maxMapLength = options?.maxMapLength ?? UINT32_MAX;
    this.maxExtLength = options?.maxExtLength ?? UINT32_MAX;
    this.keyDecoder = options?.keyDecoder !== void 0 ? options.keyDecoder : sharedCachedKeyDecoder;
    this.mapKeyConverter = options?.mapKeyConverter ?? mapKeyConverter;
  }
  clone() {
    return new _Decoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      rawStrings: this.rawStrings,
      maxStrLength: this.maxStrLength,
      maxBinLength: this.maxBinLength,
      maxArrayLength: this.maxArrayLength,
      maxMapLength: this.maxMapLength,
      maxExtLength: this.maxExtLength,
      keyDecoder: this.keyDecoder
    });
  }
  reinitializeState() {
    this.totalPos = 0;
    this.headByte = HEAD_BYTE_REQUIRED;
    this.stack.reset();
  }
  setBuffer(buffer) {
    const bytes = ensureUint8Array(buffer);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  appendBuffer(buffer) {
    if (this.headByte === HEAD_BYTE_REQUIRED && !this.hasRemaining(1)) {
      this.setBuffer(buffer);
    } else {
      const remainingData = this.bytes.subarray(this.pos);
      const newData = ensureUint8Array(buffer);
      const newBuffer = new Uint8Array(remainingData.length + newData.length);
      newBuffer.set(remainingData);
      newBuffer.set(newData, remainingData.length);
      this.setBuffer(newBuffer);
    }
  }
  hasRemaining(size) {
    return this.view.byteLength - this.pos >= size;
  }
  createExtraByteError(posToShow) {
    const { view, pos } = this;
    return new RangeError(`Extra ${view.byteLength - pos} of ${view.byteLength} byte(s) found at buffer[${posToShow}]`);
  }
  /**
   * @throws {@link DecodeError}
   * @throws {@link RangeError}
   */
  decode(buffer) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decode(buffer);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      const object = this.doDecodeSync();
      if (this.hasRemaining(1)) {
        throw this.createExtraByteError(this.pos);
      }
      return object;
    } finally {
      this.entered = false;
    }
  }
  *decodeMulti(buffer) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMulti(buffer);
      return;
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      while (this.hasRemaining(1)) {
        yield this.doDecodeSync();
      }
    } finally {
      this.entered = false;
    }
  }
  async decodeAsync(stream) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decodeAsync(stream);
    }
    try {
      this.entered = true;
      let decoded = false;
      let object;
      for await (const buffer of stream) {
        if (decoded) {
          this.entered = false;
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        try {
          object = this.doDecodeSync();
          decoded = true;
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
      if (decoded) {
        if (this.hasRemaining(1)) {
          throw this.createExtraByteError(this.totalPos);
        }
        return object;
      }
      const { headByte, pos, totalPos } = this;
      throw new RangeError(`Insufficient data in parsing ${prettyByte(headByte)} at ${totalPos} (${pos} in the current buffer)`);
    } finally {
      this.entered = false;
    }
  }
  decodeArrayStream(stream) {
    return this.decodeMultiAsync(stream, true);
  }
  decodeStream(stream) {
    return this.decodeMultiAsync(stream, false);
  }
  async *decodeMultiAsync(stream, isArray) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMultiAsync(stream, isArray);
      return;
    }
    try {
      this.entered = true;
      let isArrayHeaderRequired = isArray;
      let arrayItemsLeft = -1;
      for await (const buffer of stream) {
        if (isArray && arrayItemsLeft === 0) {
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        if (isArrayHeaderRequired) {
          arrayItemsLeft = this.readArraySize();
          isArrayHeaderRequired = false;
          this.complete();
        }
        try {
          while (true) {
            yield this.doDecodeSync();
            if (--arrayItemsLeft === 0) {
              break;
            }
          }
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
    } finally {
      this.entered = false;
    }
  }
  doDecodeSync() {
    DECODE: while (true) {
      const headByte = this.readHeadByte();
      let object;
      if (headByte >= 224) {
        object = headByte - 256;
      } else if (headByte < 192) {
        if (headByte < 128) {
          object = headByte;
        } else if (headByte < 144) {
          const size = headByte - 128;
          if (size !== 0) {
            this.pushMapState(size);
            this.complete();
            continue DECODE;
          } else {
            object = {};
          }
        } else if (headByte < 160) {
          const size = headByte - 144;
          if (size !== 0) {
            this.pushArrayState(size);
            this.complete();
            continue DECODE;
          } else {
            object = [];
          }
        } else {
          const byteLength = headByte - 160;
          object = this.decodeString(byteLength, 0);
        }
      } else if (headByte === 192) {
        object = null;
      } else if (headByte === 194) {
        object = false;
      } else if (headByte === 195) {
        object = true;
      } else if (headByte === 202) {
        object = this.readF32();
      } else if (headByte === 203) {
        object = this.readF64();
      } else if (headByte === 204) {
        object = this.readU8();
      } else if (headByte === 205) {
        object = this.readU16();
      } else if (headByte === 206) {
        object = this.readU32();
      } else if (headByte === 207) {
        if (this.useBigInt64) {
          object = this.readU64AsBigInt();
        } else {
          object = this.readU64();
        }
      } else if (headByte === 208) {
        object = this.readI8();
      } else if (headByte === 209) {
        object = this.readI16();
      } else if (headByte === 210) {
        object = this.readI32();
      } else if (headByte === 211) {
        if (this.useBigInt64) {
          object = this.readI64AsBigInt();
        } else {
          object = this.readI64();
        }
      } else if (headByte === 217) {
        const byteLength = this.lookU8();
        object = this.decodeString(byteLength, 1);
      } else if (headByte === 218) {
        const byteLength = this.lookU16();
        object = this.decodeString(byteLength, 2);
      } else if (headByte === 219) {
        const byteLength = this.lookU32();
        object = this.decodeString(byteLength, 4);
      } else if (headByte === 220) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 221) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 222) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 223) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 196) {
        const size = this.lookU8();
        object = this.decodeBinary(size, 1);
      } else if (headByte === 197) {
        const size = this.lookU16();
        object = this.decodeBinary(size, 2);
      } else if (headByte === 198) {
        const size = this.lookU32();
        object = this.decodeBinary(size, 4);
      } else if (headByte === 212) {
        object = this.decodeExtension(1, 0);
      } else if (headByte === 213) {
        object = this.decodeExtension(2, 0);
      } else if (headByte === 214) {
        object = this.decodeExtension(4, 0);
      } else if (headByte === 215) {
        object = this.decodeExtension(8, 0);
      } else if (headByte === 216) {
        object = this.decodeExtension(16, 0);
      } else if (headByte === 199) {
        const size = this.lookU8();
        object = this.decodeExtension(size, 1);
      } else if (headByte === 200) {
        const size = this.lookU16();
        object = this.decodeExtension(size, 2);
      } else if (headByte === 201) {
        const size = this.lookU32();
        object = this.decodeExtension(size, 4);
      } else {
        throw new DecodeError(`Unrecognized type byte: ${prettyByte(headByte)}`);
      }
      this.complete();
      const stack = this.stack;
      while (stack.length > 0) {
        const state = stack.top();
        if (state.type === STATE_ARRAY) {
          state.array[state.position] = object;
          state.position++;
          if (state.position === state.size) {
            object = state.array;
            stack.release(state);
          } else {
            continue DECODE;
          }
        } else if (state.type === STATE_MAP_KEY) {
          if (object === "__proto__") {
            throw new DecodeError("The key __proto__ is not allowed");
          }
          state.key = this.mapKeyConverter(object);
          state.type = STATE_MAP_VALUE;
          continue DECODE;
        } else {
          state.map[state.key] = object;
          state.readCount++;
          if (state.readCount === state.size) {
            object = state.map;
            stack.release(state);
          } else {
            state.key = null;
            state.type = STATE_MAP_KEY;
            continue DECODE;
          }
        }
      }
      return object;
    }
  }
  readHeadByte() {
    if (this.headByte === HEAD_BYTE_REQUIRED) {
      this.headByte = this.readU8();
    }
    return this.headByte;
  }
  complete() {
    this.headByte = HEAD_BYTE_REQUIRED;
  }
  readArraySize() {
    const headByte = this.readHeadByte();
    switch (headByte) {
      case 220:
        return this.readU16();
      case 221:
        return this.readU32();
      default: {
        if (headByte < 160) {
          return headByte - 144;
        } else {
          throw new DecodeError(`Unrecognized array type byte: ${prettyByte(headByte)}`);
        }
      }
    }
  }
  pushMapState(size) {
    if (size > this.maxMapLength) {
      throw new DecodeError(`Max length exceeded: map length (${size}) > maxMapLengthLength (${this.maxMapLength})`);
    }
    this.stack.pushMapState(size);
  }
  pushArrayState(size) {
    if (size > this.maxArrayLength) {
      throw new DecodeError(`Max length exceeded: array length (${size}) > maxArrayLength (${this.maxArrayLength})`);
    }
    this.stack.pushArrayState(size);
  }
  decodeString(byteLength, headerOffset) {
    if (!this.rawStrings || this.stateIsMapKey()) {
      return this.decodeUtf8String(byteLength, headerOffset);
    }
    return this.decodeBinary(byteLength, headerOffset);
  }
  /**
   * @throws {@link RangeError}
   */
  decodeUtf8String(byteLength, headerOffset) {
    if (byteLength > this.maxStrLength) {
      throw new DecodeError(`Max length exceeded: UTF-8 byte length (${byteLength}) > maxStrLength (${this.maxStrLength})`);
    }
    if (this.bytes.byteLength < this.pos + headerOffset + byteLength) {
      throw MORE_DATA;
    }
    const offset = this.pos + headerOffset;
    let object;
    if (this.stateIsMapKey() && this.keyDecoder?.canBeCached(byteLength)) {
      object = this.keyDecoder.decode(this.bytes, offset, byteLength);
    } else {
      object = utf8Decode(this.bytes, offset, byteLength);
    }
    this.pos += headerOffset + byteLength;
    return object;
  }
  stateIsMapKey() {
    if (this.stack.length > 0) {
      const state = this.stack.top();
      return state.type === STATE_MAP_KEY;
    }
    return false;
  }
  /**
   * @throws {@link RangeError}
   */
  decodeBinary(byteLength, headOffset) {
    if (byteLength > this.maxBinLength) {
      throw new DecodeError(`Max length exceeded: bin length (${byteLength}) > maxBinLength (${this.maxBinLength})`);
    }
    if (!this.hasRemaining(byteLength + headOffset)) {
      throw MORE_DATA;
    }
    const offset = this.pos + headOffset;
    const object = this.bytes.subarray(offset, offset + byteLength);
    this.pos += headOffset + byteLength;
    return object;
  }
  decodeExtension(size, headOffset) {
    if (size > this.maxExtLength) {
      throw new DecodeError(`Max length exceeded: ext length (${size}) > maxExtLength (${this.maxExtLength})`);
    }
    const extType = this.view.getInt8(this.pos + headOffset);
    const data = this.decodeBinary(
      size,
      headOffset + 1
      /* extType */
    );
    return this.extensionCodec.decode(data, extType, this.context);
  }
  lookU8() {
    return this.view.getUint8(this.pos);
  }
  lookU16() {
    return this.view.getUint16(this.pos);
  }
  lookU32() {
    return this.view.getUint32(this.pos);
  }
  readU8() {
    const value = this.view.getUint8(this.pos);
    this.pos++;
    return value;
  }
  readI8() {
    const value = this.view.getInt8(this.pos);
    this.pos++;
    return value;
  }
  readU16() {
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }
  readI16() {
    const value = this.view.getInt16(this.pos);
    this.pos += 2;
    return value;
  }
  readU32() {
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }
  readI32() {
    const value = this.view.getInt32(this.pos);
    this.pos += 4;
    return value;
  }
  readU64() {
    const value = getUint64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readI64() {
    const value = getInt64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readU64AsBigInt() {
    const value = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return value;
  }
  readI64AsBigInt() {
    const value = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return value;
  }
  readF32() {
    const value = this.view.getFloat32(this.pos);
    this.pos += 4;
    return value;
  }
  readF64() {
    const value = this.view.getFloat64(this.pos);
    this.pos += 8;
    return value;
  }
};

// src/codec.js
var encoder = new Encoder({ ignoreUndefined: true });
var decoder = new Decoder();
function encodeMessage(message) {
  return encoder.encode(message);
}
function decodeMessage(data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const message = decoder.decode(bytes);
  if (message === null || typeof message !== "object" || Array.isArray(message) || typeof message.t !== "string") {
    throw new Error("not a session protocol message");
  }
  return message;
}

// src/session.js
var SUBPROTOCOL = "mmoshard.v1";
var CLOSE_DROPPED = 4001;
var SILENT_BEATS = 3;
var now = () => performance.now();
var sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
var SessionClient = class {
  /**
   * @param {string} url the node's WebSocket address, `ws://host:port/`.
   * @param {string} token an access token (`login(...).access_token`).
   * @param {object} [options] see connect().
   */
  constructor(url2, token, options = {}) {
    this.url = url2;
    this.urls = [url2];
    for (const alternate of options.alternates ?? []) {
      const address = typeof alternate === "string" ? alternate : alternate && alternate.websocket;
      if (address && !this.urls.includes(address)) this.urls.push(address);
    }
    this.onMoved = options.onMoved ?? null;
    this.token = token;
    this.clientVersion = options.clientVersion ?? "0.0.0";
    this.platform = options.platform ?? "web";
    this.onEvent = options.onEvent ?? null;
    this.autoResume = options.autoResume ?? true;
    this.heartbeat = options.heartbeat ?? true;
    this.connectTimeout = options.connectTimeout ?? 10;
    this.maxFrame = options.maxFrame ?? 65536;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.welcome = null;
    this.sessionId = null;
    this.accountId = null;
    this.resumeToken = null;
    this.resumeGrace = 0;
    this.heartbeatInterval = null;
    this.lastSeq = 0;
    this.rtt = null;
    this.resumes = 0;
    this.moves = 0;
    this.endReason = null;
    this.ended = new Promise((resolve) => {
      this._resolveEnded = resolve;
    });
    this._link = null;
    this._ready = false;
    this._pending = /* @__PURE__ */ new Map();
    this._held = new HeldRequests();
    this._busy = new BusyRetry(options.busyRetries ?? 3, (entry) => this._dispatch(entry));
    this._nextId = 0;
    this._closing = false;
    this._resuming = false;
    this._fatal = null;
    this._lastError = null;
    this._listeners = /* @__PURE__ */ new Map();
    this._waiters = [];
    this._lostWaiters = [];
    this._beatTimer = null;
    this._pingNonce = 0;
    this._pingSentAt = null;
    this._heard = 0;
    this._heardAtLastBeat = 0;
    this._silentBeats = 0;
  }
  /** Whether the link is up and the session usable (false while resuming). */
  get connected() {
    return this._ready;
  }
  // -- public API --------------------------------------------------------
  /** Open the link and say hello. @return the `welcome` message. */
  async connect() {
    if (this._link !== null || this.welcome !== null || this.endReason !== null) {
      throw new Error("connect() is called once per SessionClient");
    }
    if (typeof this.WebSocket !== "function") {
      throw new Error("no WebSocket implementation: pass options.WebSocket (e.g. the ws package's) or run Node >= 22 or a browser");
    }
    try {
      await this._open(this.connectTimeout);
      return await this._call({
        t: "hello",
        token: this.token,
        client_version: this.clientVersion,
        platform: this.platform
      }, true);
    } catch (e) {
      const code = e instanceof RequestError ? e.code : null;
      this._abandonLink();
      const reason = code !== null && !code.startsWith("client.") ? code : null;
      this._end(reason || this._fatal || this._lastError || "disconnected");
      throw e;
    }
  }
  /**
   * Send a request and wait for its reply.
   * @return {Promise<object>} the reply message (its `t` is the request's type).
   * @throws RequestError the server's error (`code`, `message`, `retryAfter`),
   *   or `client.connection_lost` (the link dropped before the reply, or is
   *   down: the request may or may not have been applied), `client.closed`
   *   (the session is over), `client.frame_too_large` (not sent).
   */
  request(type, body = {}) {
    return this._call({ ...body, t: type }, false);
  }
  /**
   * Send a message that gets no reply (e.g. `world.move`).
   * @return {boolean} whether it was sent (false while the link is down).
   * @throws RequestError `client.frame_too_large` (not sent).
   */
  send(type, body = {}) {
    try {
      this._write({ ...body, t: type }, false);
      return true;
    } catch (e) {
      if (e instanceof RequestError && e.code === FRAME_TOO_LARGE) throw e;
      return false;
    }
  }
  /** Call `fn(message)` for each event of `type` ("*": every event). @return this client. */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (set === void 0) this._listeners.set(type, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return this;
  }
  /** Stop calling `fn` for `type`. @return this client. */
  off(type, fn) {
    const set = this._listeners.get(type);
    if (set !== void 0) set.delete(fn);
    return this;
  }
  /**
   * The next event of `type` (any type when omitted) arriving after this
   * call: events are not buffered.
   * @param {number} [timeout] seconds; then it rejects with `client.timeout`.
   */
  nextEvent(type, timeout) {
    return new Promise((resolve, reject) => {
      if (this.endReason !== null) {
        reject(clientError(CLOSED, `the session ended: ${this.endReason}`));
        return;
      }
      const waiter = { type, resolve, reject, timer: null };
      if (timeout !== void 0) {
        waiter.timer = setTimeout(() => {
          this._waiters = this._waiters.filter((w) => w !== waiter);
          reject(clientError(TIMEOUT, `no ${type || "event"} within ${timeout} s`));
        }, timeout * 1e3);
      }
      this._waiters.push(waiter);
    });
  }
  /** Log out (`bye`) and close. @return when the link is gone (`ended` is "closed"). */
  async close() {
    if (this.endReason !== null) return;
    this._closing = true;
    const link = this._link;
    if (link === null || !this._ready) {
      this._abandonLink();
      this._end("closed");
      return;
    }
    const lost = new Promise((resolve) => this._lostWaiters.push(resolve));
    try {
      this._write({ t: "bye" }, true);
    } catch {
    }
    const timer = setTimeout(() => this.drop(), 2e3);
    await lost;
    clearTimeout(timer);
    this._end("closed");
  }
  /** Drop the link without logging out, as a network failure would (the client resumes). */
  drop() {
    const link = this._link;
    if (link === null) return;
    this._closeSocket(link, CLOSE_DROPPED);
    this._linkLost(link, 1006);
  }
  // -- the link ----------------------------------------------------------
  _open(timeoutSeconds) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocket(this.url, [SUBPROTOCOL]);
      } catch (e) {
        reject(clientError(CONNECTION_LOST, `cannot open ${this.url}: ${e && e.message}`));
        return;
      }
      ws.binaryType = "arraybuffer";
      const link = { ws, open: false, dead: false };
      const fail = (why) => {
        if (link.open || link.dead) return;
        link.dead = true;
        clearTimeout(timer);
        this._closeSocket(link, 1e3);
        reject(clientError(CONNECTION_LOST, `cannot open ${this.url}: ${why}`));
      };
      const timer = setTimeout(() => fail("timed out"), timeoutSeconds * 1e3);
      ws.onopen = () => {
        if (link.dead) return;
        clearTimeout(timer);
        if (ws.protocol && ws.protocol !== SUBPROTOCOL) {
          fail(`the server chose subprotocol ${ws.protocol}`);
          return;
        }
        link.open = true;
        this._link = link;
        this._heard = this._heardAtLastBeat = 0;
        this._silentBeats = 0;
        resolve(link);
      };
      ws.onmessage = (event) => this._received(link, event.data);
      ws.onerror = () => {
        if (!link.open) {
          fail("connection failed");
        } else if (!link.dead) {
          this._closeSocket(link, 1e3);
          this._linkLost(link, 1006);
        }
      };
      ws.onclose = (event) => {
        if (!link.open) {
          fail(`closed (${event.code})`);
          return;
        }
        this._linkLost(link, event.code);
      };
    });
  }
  _closeSocket(link, code) {
    link.dead = true;
    const ws = link.ws;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
    }
  }
  _abandonLink() {
    const link = this._link;
    if (link !== null) {
      this._closeSocket(link, 1e3);
      this._linkLost(link, 1e3);
    }
  }
  _write(message, handshake) {
    if (this.endReason !== null || this._closing && !handshake) {
      throw clientError(CLOSED, `the session ended: ${this.endReason || "closed"}`);
    }
    const link = this._link;
    if (link === null || !this._ready && !handshake) {
      throw clientError(CONNECTION_LOST, "not connected");
    }
    const bytes = encodeMessage(message);
    if (bytes.byteLength > this.maxFrame) {
      throw clientError(
        FRAME_TOO_LARGE,
        `${message.t} is ${bytes.byteLength} bytes, over the server's ${this.maxFrame}; not sent`
      );
    }
    link.ws.send(bytes);
  }
  _call(message, handshake) {
    return new Promise((resolve, reject) => {
      this._dispatch({ resolve, reject, type: message.t, message, handshake });
    });
  }
  // Send a pending entry's request under a new id (again after server.busy).
  _dispatch(entry) {
    const id = ++this._nextId;
    entry.message.id = id;
    if (this._held.holding && !entry.handshake) {
      this._held.hold(entry);
      return;
    }
    this._pending.set(id, entry);
    try {
      this._write(entry.message, entry.handshake);
    } catch (e) {
      this._pending.delete(id);
      entry.reject(e);
    }
  }
  // -- incoming ----------------------------------------------------------
  _received(link, data) {
    if (link !== this._link || typeof data === "string") return;
    this._heard += 1;
    let message;
    try {
      message = decodeMessage(data);
    } catch (e) {
      console.error(`mmoshard-client: undecodable message from ${this.url}; dropping the link`, e);
      this.drop();
      return;
    }
    const seq = message.seq;
    if (typeof seq === "number") {
      if (seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    const t = message.t;
    if (t === "ping") {
      const pong = { t: "pong" };
      if ("n" in message) pong.n = message.n;
      if ("id" in message) pong.id = message.id;
      try {
        this._write(pong, true);
      } catch {
      }
      return;
    }
    if (t === "pong" && message.id === void 0) {
      if (message.n === this._pingNonce && this._pingSentAt !== null) {
        this.rtt = (now() - this._pingSentAt) / 1e3;
        this._pingSentAt = null;
      }
      return;
    }
    if (t === "error") this._lastError = message.code;
    if (t === "error" && FATAL_CODES.has(message.code)) {
      this._fatal = message.code;
    } else if (t === "server.shutdown") {
      if (!message.resume) {
        this._fatal = "shutdown";
      } else if (this.autoResume) {
        this._nextUrl();
        this._held.stopping(message, this._pending);
      }
    }
    if (message.id !== void 0) {
      const pending = this._pending.get(message.id);
      if (pending !== void 0) {
        this._pending.delete(message.id);
        if (t === "error") {
          if (!this._busy.take(pending, message)) pending.reject(new RequestError(message));
        } else {
          if (pending.type === "hello") this._welcomed(message);
          else if (pending.type === "resume") this._resumed(message);
          pending.resolve(message);
        }
        return;
      }
    }
    this._emit(t, message);
  }
  _welcomed(welcome) {
    this.welcome = welcome;
    this.sessionId = welcome.session_id;
    this.accountId = welcome.account_id;
    this.resumeToken = welcome.resume_token;
    this.resumeGrace = welcome.resume_grace_s ?? 0;
    if (typeof welcome.max_frame === "number") this.maxFrame = welcome.max_frame;
    this._ready = true;
    this._startHeartbeat(welcome.heartbeat_s);
  }
  _resumed(reply) {
    this.resumeToken = reply.resume_token;
    this.resumes += 1;
    this._ready = true;
    this._silentBeats = 0;
    if (this.heartbeat === true && typeof reply.heartbeat_s === "number") {
      this.heartbeatInterval = reply.heartbeat_s;
    }
    const moved = reply.moved === true;
    this._emit("client.resumed", {
      t: "client.resumed",
      replayed: reply.replayed,
      resumes: this.resumes,
      moved,
      url: this.url
    });
    if (moved) {
      this.moves += 1;
      if (this.onMoved !== null) this._deliver(this.onMoved, "client.moved", reply, false);
      this._emit("client.moved", { t: "client.moved", url: this.url, moves: this.moves, resumed: reply });
    }
    this._held.resend(this._pending, (message) => this._write(message, false));
  }
  /** The next address of the role, after the current one (itself when there is no other). */
  _nextUrl() {
    const at = this.urls.indexOf(this.url);
    this.url = this.urls[(at + 1) % this.urls.length];
  }
  _emit(type, message) {
    if (this.onEvent !== null) this._deliver(this.onEvent, type, message, true);
    for (const key of [type, "*"]) {
      const set = this._listeners.get(key);
      if (set !== void 0) {
        for (const fn of [...set]) this._deliver(fn, type, message, false);
      }
    }
    if (this._waiters.length) {
      const keep = [];
      for (const w of this._waiters) {
        if (w.type === void 0 || w.type === type) {
          clearTimeout(w.timer);
          w.resolve(message);
        } else {
          keep.push(w);
        }
      }
      this._waiters = keep;
    }
  }
  _deliver(fn, type, message, withType) {
    try {
      if (withType) fn(type, message);
      else fn(message);
    } catch (e) {
      console.error(`mmoshard-client: a listener of ${type} failed`, e);
    }
  }
  _linkLost(link, code) {
    if (link !== this._link) return;
    this._link = null;
    this._ready = false;
    this._pingSentAt = null;
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      p.reject(clientError(CONNECTION_LOST, "the link dropped before the reply"));
    }
    const waiters = this._lostWaiters;
    this._lostWaiters = [];
    for (const resolve of waiters) resolve();
    if (this._closing || this.endReason !== null || this.welcome === null || this._resuming) {
      return;
    }
    this._emit("client.link_lost", { t: "client.link_lost", code });
    if (this.autoResume && this.resumeToken && this._fatal === null) {
      this._resume();
    } else {
      this._end(this._fatal || "disconnected");
    }
  }
  async _resume() {
    this._resuming = true;
    const deadline = now() + this.resumeGrace * 1e3;
    let delay = 50;
    try {
      while (!this._closing && this.endReason === null) {
        try {
          await this._open(Math.max(0.05, Math.min(this.connectTimeout, (deadline - now()) / 1e3)));
          await this._call({
            t: "resume",
            resume_token: this.resumeToken,
            last_seq: this.lastSeq
          }, true);
          return;
        } catch (e) {
          this._abandonLink();
          if (this._closing || this.endReason !== null) return;
          const code = e instanceof RequestError ? e.code : CONNECTION_LOST;
          if (code === "server.unavailable") {
            delay = Math.max(delay, (e.retryAfter ?? 1) * 1e3);
          } else if (!code.startsWith("client.")) {
            this._end(code);
            return;
          } else {
            this._nextUrl();
          }
          if (now() + delay >= deadline) {
            this._end("resume_failed");
            return;
          }
          await sleep(delay);
          delay = Math.min(delay * 2, 2e3);
        }
      }
    } finally {
      this._resuming = false;
    }
    if (this._closing && this.endReason === null) this._end("closed");
  }
  // -- heartbeat ---------------------------------------------------------
  _startHeartbeat(serverInterval) {
    if (this.heartbeat === false) return;
    this.heartbeatInterval = typeof this.heartbeat === "number" ? this.heartbeat : serverInterval;
    if (!(this.heartbeatInterval > 0)) return;
    this._beatTimer = setTimeout(() => this._beat(), this.heartbeatInterval * 1e3);
  }
  _beat() {
    this._beatTimer = null;
    if (this.endReason !== null || this._closing) return;
    if (this._link !== null && this._ready) {
      if (this._heard === this._heardAtLastBeat) {
        this._silentBeats += 1;
        if (this._silentBeats >= SILENT_BEATS) {
          this.drop();
        }
      } else {
        this._silentBeats = 0;
      }
      this._heardAtLastBeat = this._heard;
      if (this._link !== null) {
        this._pingNonce += 1;
        this._pingSentAt = now();
        try {
          this._write({ t: "ping", n: this._pingNonce }, false);
        } catch {
        }
      }
    }
    this._beatTimer = setTimeout(() => this._beat(), this.heartbeatInterval * 1e3);
  }
  _end(reason) {
    if (this.endReason !== null) return;
    this.endReason = reason;
    this._ready = false;
    if (this._beatTimer !== null) {
      clearTimeout(this._beatTimer);
      this._beatTimer = null;
    }
    const link = this._link;
    if (link !== null) {
      this._link = null;
      this._closeSocket(link, 1e3);
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) p.reject(clientError(CLOSED, `the session ended: ${reason}`));
    this._held.fail(clientError(CLOSED, `the session ended: ${reason}`));
    this._busy.fail(clientError(CLOSED, `the session ended: ${reason}`));
    this._emit("client.ended", { t: "client.ended", reason });
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(clientError(CLOSED, `the session ended: ${reason}`));
    }
    this._resolveEnded(reason);
  }
};

// src/connect.js
async function connect(url2, token, options = {}) {
  const client = new SessionClient(url2, token, options);
  await client.connect();
  return client;
}

// src/world.js
var NPC_ID_BASE = 2147483648;
var MOVE_RECORD_SIZE = 20;
var COMBAT_RECORD_SIZE = 16;
var CombatKind = Object.freeze({
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
  EVADE: 12
});
var CombatFlag = Object.freeze({ CRIT: 1, ABSORBED: 2, IMMUNE: 4 });
var TYPES = [
  void 0,
  "cast_start",
  "cast_finish",
  "cast_interrupt",
  "damage",
  "heal",
  "health",
  "aura_on",
  "aura_off",
  "death",
  "revive",
  "resource",
  "evade"
];
function bytesOf(blob) {
  if (blob == null) return null;
  if (blob instanceof Uint8Array) return blob;
  if (blob instanceof ArrayBuffer) return new Uint8Array(blob);
  if (ArrayBuffer.isView(blob)) return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
  throw new TypeError("a packed record field must be binary (Uint8Array)");
}
function eachRecord(blob, size, decode) {
  const bytes = bytesOf(blob);
  const records = [];
  if (bytes === null) return records;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.byteLength / size);
  for (let i = 0, o = 0; i < n; i++, o += size) records.push(decode(view, o));
  return records;
}
function entityKind(id) {
  return id >= NPC_ID_BASE ? "n" : "p";
}
function decodeMoves(blob) {
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
      heading: speed > 0 ? Math.atan2(vz, vx) : null
    };
  });
}
function decodeCombatRecord(kind, flags, ability, a, b, value) {
  const event = { type: TYPES[kind] || "unknown", kind, flags, ability, a, b, value, entity: a };
  switch (kind) {
    case CombatKind.CAST_START:
      event.caster = a;
      event.target = b;
      event.cast_ms = value;
      break;
    case CombatKind.CAST_FINISH:
      event.caster = a;
      event.target = b;
      break;
    case CombatKind.CAST_INTERRUPT:
      event.caster = a;
      event.interrupter = b;
      break;
    case CombatKind.DAMAGE:
      event.entity = b;
      event.source = a;
      event.target = b;
      event.amount = value;
      event.crit = (flags & CombatFlag.CRIT) !== 0;
      event.absorbed = (flags & CombatFlag.ABSORBED) !== 0;
      event.immune = (flags & CombatFlag.IMMUNE) !== 0;
      break;
    case CombatKind.HEAL:
      event.entity = b;
      event.source = a;
      event.target = b;
      event.amount = value;
      event.crit = (flags & CombatFlag.CRIT) !== 0;
      break;
    case CombatKind.HEALTH:
      event.hp = value;
      event.hp_max = b;
      break;
    case CombatKind.AURA_ON:
      event.entity = b;
      event.source = a;
      event.bearer = b;
      event.duration_ms = value;
      break;
    case CombatKind.AURA_OFF:
      event.entity = b;
      event.source = a;
      event.bearer = b;
      break;
    case CombatKind.DEATH:
      event.entity = b;
      event.killer = a;
      break;
    case CombatKind.REVIVE:
      event.entity = b;
      event.reviver = a;
      event.hp = value;
      break;
    case CombatKind.RESOURCE:
      event.resource = value;
      event.resource_max = b;
      break;
    case CombatKind.EVADE:
      event.evading = value !== 0;
      break;
    default:
      break;
  }
  return event;
}
function decodeCombatRecords(blob) {
  return eachRecord(blob, COMBAT_RECORD_SIZE, (view, o) => decodeCombatRecord(
    view.getUint8(o),
    view.getUint8(o + 1),
    view.getUint16(o + 2, true),
    view.getUint32(o + 4, true),
    view.getUint32(o + 8, true),
    view.getInt32(o + 12, true)
  ));
}
function decodeEnter(record) {
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
function decodeWorldUpdate(body) {
  return {
    enters: (body.e || []).map(decodeEnter),
    left: body.l ? Array.from(body.l) : [],
    moves: decodeMoves(body.m),
    events: decodeCombatRecords(body.c)
  };
}
export {
  COMBAT_RECORD_SIZE,
  CombatFlag,
  CombatKind,
  FATAL_CODES,
  MOVE_RECORD_SIZE,
  NPC_ID_BASE,
  RequestError,
  SUBPROTOCOL,
  SessionClient,
  call,
  characters,
  classes,
  connect,
  createCharacter,
  decodeCombatRecord,
  decodeCombatRecords,
  decodeEnter,
  decodeMessage,
  decodeMoves,
  decodeWorldUpdate,
  deleteCharacter,
  encodeMessage,
  entityKind,
  login,
  logout,
  me,
  refresh,
  register
};
