// The error every request and REST call of mmoshard-client rejects with.

/**
 * The server (or the client itself) refused a request: `code` is stable
 * (docs/protocol.md, docs/auth.md; the client's own codes start with
 * `client.`), `message` is for humans.
 */
export class RequestError extends Error {
  /**
   * @param {{code?: string, message?: string, retry_after?: number, fields?: object}} error
   *   the server's error: a session protocol `error` message or a REST
   *   error body's `error` object.
   * @param {number} [status] the HTTP status of a REST answer.
   */
  constructor(error, status) {
    const code = (error && error.code) || "client.unknown_error";
    const message = (error && error.message) || "";
    super(message ? `${code}: ${message}` : code);
    this.name = "RequestError";
    this.code = code;
    this.message = message;
    this.retryAfter = error && typeof error.retry_after === "number" ? error.retry_after : undefined;
    this.fields = (error && error.fields) || undefined;
    this.status = status;
    this.body = error;
  }
}

// The client's own codes (never sent by a server).
export const CONNECTION_LOST = "client.connection_lost";
export const CLOSED = "client.closed";
export const FRAME_TOO_LARGE = "client.frame_too_large";
export const HTTP_FAILED = "client.http_failed";
export const TIMEOUT = "client.timeout";

/** @return a RequestError with one of the client's own codes. */
export function clientError(code, message) {
  return new RequestError({ code, message });
}

/** Errors after which resuming is pointless: the server ended the session. */
export const FATAL_CODES = new Set([
  "auth.invalid_token",
  "auth.revoked",
  "version.update_required",
  "server.maintenance",
  "session.replaced",
  "session.resume_failed",
  "protocol.not_authenticated",
  "server.ip_limit",
  "server.full",
]);
