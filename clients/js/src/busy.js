// Requests answered server.busy (docs/protocol.md, "Error codes"): sent again after the server's retry_after.

/** The code of a request the node did not take: it has its limit of requests in flight. */
export const SERVER_BUSY = "server.busy";

// The longest wait before a request is sent again (seconds), however many
// times it was refused.
const MAX_WAIT = 8;

/**
 * A node past its `[session] max_pending` answers `server.busy` and does
 * nothing else, so the request is safe to send again: after its
 * `retry_after` (1 s when absent), doubled each time, up to `retries` times;
 * then the caller gets the `server.busy` error.  Each wait is drawn between
 * half and all of it, so clients refused together do not come back together.
 */
export class BusyRetry {
  /**
   * @param {number} retries how many times one request is sent again (0: never).
   * @param {function} again `again(entry)` sends the session's pending entry again.
   */
  constructor(retries, again) {
    this.retries = retries;
    this.again = again;
    this._waiting = new Map(); // entry -> its timer
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
    }, wait * 1000));
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
}
