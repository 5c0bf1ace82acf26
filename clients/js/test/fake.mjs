// A scripted stand-in for a node's WebSocket listener, for deterministic tests of the client's
// state machine (the live tests run the same cases against a real twistd).

import { decodeMessage, encodeMessage } from "../src/index.js";

/**
 * The server side of every fake socket a client opens.  `handle(socket,
 * message)` answers what a client sends; by default hello gets a welcome and
 * resume a resumed (then `replay` is sent), echo its message, and slow
 * too once `slowAnswered` is set.  `refuse` makes new sockets fail,
 * `down` (a set of addresses) those to these addresses only.  A resume on
 * another address than the hello's is answered `moved: true`, as a node
 * taking over a session does.
 */
export class FakeServer {
  constructor({ heartbeat = 10, grace = 5, maxFrame = 65536 } = {}) {
    this.heartbeat = heartbeat;
    this.grace = grace;
    this.maxFrame = maxFrame;
    this.sockets = [];
    this.refuse = false;
    this.down = new Set();
    this.home = null;
    this.replay = [];
    this.resumeError = null;
    this.tokens = 0;
    this.slowAnswered = false;
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = url;
        this.protocols = protocols;
        this.protocol = "mmoshard.v1";
        this.sent = [];
        this.closedWith = null;
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        server.sockets.push(this);
        setTimeout(() => {
          if (server.refuse || server.down.has(url)) this.onclose?.({ code: 1006 });
          else this.onopen?.({});
        }, 1);
      }

      send(bytes) {
        const message = decodeMessage(bytes);
        this.sent.push(message);
        server.handle(this, message);
      }

      close(code) {
        this.closedWith = code;
      }

      /** The server sends `message`. */
      push(message) {
        this.onmessage?.({ data: encodeMessage(message).slice().buffer });
      }

      /** The server closes the connection. */
      drop(code = 1006) {
        this.onclose?.({ code });
      }

      types() {
        return this.sent.map((m) => m.t);
      }
    };
  }

  get last() {
    return this.sockets[this.sockets.length - 1];
  }

  handle(socket, message) {
    if (message.t === "hello") {
      this.tokens += 1;
      this.home = socket.url;
      socket.push({
        t: "welcome", id: message.id, session_id: "s1", account_id: 5,
        heartbeat_s: this.heartbeat, resume_token: `r${this.tokens}`, resume_grace_s: this.grace,
        max_frame: this.maxFrame, server_time: 0,
      });
    } else if (message.t === "resume") {
      if (this.resumeError !== null) {
        socket.push({ t: "error", id: message.id, code: this.resumeError, message: "no" });
        socket.drop(4000);
        return;
      }
      this.tokens += 1;
      const moved = socket.url !== this.home ? { moved: true } : {};
      this.home = socket.url;
      socket.push({
        t: "resumed", id: message.id, session_id: "s1", resume_token: `r${this.tokens}`,
        heartbeat_s: this.heartbeat, replayed: this.replay.length, server_time: 0, ...moved,
      });
      for (const event of this.replay) socket.push(event);
    } else if (message.t === "bye") {
      socket.push({ t: "bye" });
      socket.drop(1000);
    } else if (message.t === "echo") {
      socket.push({ ...message });
    } else if (message.t === "slow" && this.slowAnswered) {
      socket.push({ ...message });
    }
  }
}
