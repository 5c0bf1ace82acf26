"""Helpers of the hostile-input tests: a node with every role, blocking HTTP and session clients run from a thread, hostile values, a log watch."""

import http.client
import json
import socket
import struct

import msgpack
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.logger import LogLevel, globalLogPublisher

from mmoshard.config import parseConfig
from mmoshard.interfaces import IAdminSite, IMessageRouter, IWebSite
from mmoshard.node import buildNode
from mmoshard.plugins import discoverRoles
from mmoshard.web.routes import Router

TOKEN_KEY = "hostile-test-key-0123456789abcdef"

# Integers around every boundary a column or a parser has.
INT_EDGES = [0, 1, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
             -(2**63), -(2**63) - 1, 10**30, -(10**30)]
# Text a parser, a database driver or a hasher may choke on.
TEXT_EDGES = ["", " ", "\udc80", "a\ud800b", "\udfff\ud800", "\x00", "a\x00b", "\u202e",
              "é", "\U0001d54f", "\ufeff", "x" * 300, "../../etc", "%ff", "' OR 1=1 --",
              "\r\n", "Bearer", "warrior", "ptr/1.0", "1.0.0"]
# Bytes no decoder takes as UTF-8 (invalid, an encoded surrogate, overlong).
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xc3", b"\x80"]

integers = st.sampled_from(INT_EDGES) | st.integers(-(2**70), 2**70)
texts = st.sampled_from(TEXT_EDGES) | st.text(max_size=24)
scalars = (st.none() | st.booleans() | integers | texts
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
headerValues = (
    st.sampled_from(BAD_BYTES).map(lambda b: b"x" + b)
    | st.sampled_from(BAD_BYTES).map(lambda b: b"Bearer " + b)
    | st.binary(max_size=24).map(lambda b: b.translate(None, b"\r\n\x00"))
    | texts.map(lambda t: t.encode("utf-8", "surrogatepass").translate(None, b"\r\n\x00"))
)


class LogWatch:
    """Keeps every event logged at error or above, or with a failure, while installed."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        if "log_failure" in event or event.get("log_level") in (LogLevel.error,
                                                                 LogLevel.critical):
            self.events.append(event)

    def install(self, testCase):
        globalLogPublisher.addObserver(self)
        testCase.addCleanup(globalLogPublisher.removeObserver, self)

    def problems(self):
        """@return: what was logged, one line each, for a failure message."""
        return [str(e.get("log_failure") or e.get("log_format")) for e in self.events]


async def startNode(testCase, **extra):
    """
    Start every installed role in one process on the embedded default (SQLite,
    memory store), with limits a fuzzer does not trip.

    @return: the node.
    """
    roles = discoverRoles()
    sections = {
        "node": {"id": "hostile", "var_dir": testCase.mktemp()},
        "sql": {"url": "sqlite:///" + testCase.mktemp() + ".db"},
        "secrets": {"token_key": TOKEN_KEY},
        "listen": {"http": "tcp:0:interface=127.0.0.1", "tcp": "tcp:0:interface=127.0.0.1",
                   "websocket": "", "admin": "tcp:0:interface=127.0.0.1"},
        "session": {"rate": 100000.0, "burst": 100000, "max_per_ip": 100000},
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "login_rate": 100000,
                 "register_rate": 100000},
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    root = buildNode(parseConfig(sections, roles, env={}), reactor, roles)
    root.startService()
    testCase.addCleanup(root.stopService)
    await root.started
    return root.node


def port(node, name):
    """@return: the port listener C{name} of C{node} is bound to."""
    return node.listeningPorts[name].getHost().port


def routers(node):
    """
    @return: [(listener name, L{Router})] of everything mounted on the
        node's public and admin sites, found by walking their resources.
    """
    found = []
    for name, interface in (("http", IWebSite), ("admin", IAdminSite)):
        stack = [node.lookup(interface).root]
        seen = set()
        while stack:
            resource = stack.pop()
            if id(resource) in seen:
                continue
            seen.add(id(resource))
            if isinstance(resource, Router):
                found.append((name, resource))
            stack.extend(getattr(resource, "children", {}).values())
    return found


def messageTypes(node):
    """@return: every message type the node's session router knows, sorted."""
    return sorted(node.lookup(IMessageRouter).messageTypes)


def request(portNumber, method, path, headers=(), body=None):
    """
    A blocking HTTP request (from a thread, never the reactor's).

    @param headers: (name, bytes value) pairs, sent as they are.
    @return: (status, content type, body bytes).
    """
    conn = http.client.HTTPConnection("127.0.0.1", portNumber, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        conn.close()


def requestJSON(portNumber, method, path, body=None, token=None):
    """@return: (status, parsed body) of a JSON request."""
    headers = [("Content-Type", b"application/json")]
    if token is not None:
        headers.append(("Authorization", b"Bearer " + token.encode()))
    data = None if body is None else json.dumps(body).encode()
    status, _, raw = request(portNumber, method, path, headers, data)
    return status, json.loads(raw)


def account(portNumber, username):
    """
    Register C{username}, log in and make a character.
    @return: (access token, character id).
    """
    password = "Hostile-Pass-1234"
    requestJSON(portNumber, "POST", "/v1/accounts", {"username": username, "password": password})
    _, login = requestJSON(portNumber, "POST", "/v1/sessions",
                           {"username": username, "password": password})
    token = login["access_token"]
    _, classes = requestJSON(portNumber, "GET", "/v1/classes")
    _, character = requestJSON(portNumber, "POST", "/v1/characters",
                               {"name": username.replace("_", "")[:12] + "x",
                                "class": classes["classes"][0]["id"]}, token)
    return token, character["id"]


class Peer:
    """A blocking session-protocol client over TCP (from a thread)."""

    def __init__(self, portNumber):
        self.sock = socket.create_connection(("127.0.0.1", portNumber), timeout=30)
        self.buffer = b""
        self.closed = False

    def sendPayload(self, payload):
        try:
            self.sock.sendall(struct.pack(">I", len(payload)) + payload)
        except OSError:
            self.closed = True

    def send(self, message):
        self.sendPayload(msgpack.packb(message, use_bin_type=True))

    def receive(self):
        """@return: the next message, or None once the server closed."""
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack_from(">I", self.buffer)
                if len(self.buffer) >= 4 + size:
                    payload, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
                    return msgpack.unpackb(payload, raw=False, strict_map_key=False)
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.buffer += data

    def until(self, done):
        """@return: the messages received up to the first C{done} accepts, or to the close."""
        got = []
        while True:
            message = self.receive()
            if message is None:
                return got
            got.append(message)
            if done(message):
                return got

    def request(self, message):
        """Send C{message} (with an id) and @return: the messages up to its answer."""
        self.send(message)
        return self.until(lambda m: m.get("id") == message["id"])

    def close(self):
        self.sock.close()
