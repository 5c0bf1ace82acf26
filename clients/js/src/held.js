// Requests held across a node's stop (docs/protocol.md, server.shutdown): sent again where the session resumes.

/**
 * What a session holds between a `server.shutdown` with `resume: true` and
 * its `resumed`: the requests made meanwhile, and those the stopping node
 * did not answer but for the ones its notice names `unanswered` (taken,
 * their outcome unknown: they fail with the link).  Each entry is the
 * session's pending entry `{message, resolve, reject, type, handshake}`; a request keeps
 * its id when it is sent again.
 */
export class HeldRequests {
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
    if (!Array.isArray(notice.pending)) return; // an older node: they fail with the link
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
}
