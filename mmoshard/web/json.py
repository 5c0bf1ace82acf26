"""JSON for twisted.web: typed error bodies, answers written in one piece, bounded request bodies."""

import json
from io import BytesIO

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from mmoshard.twistedcompat import requestDisconnected

MAX_BODY = 64 * 1024
# One encoder for every answer: json.dumps with separators makes a new one
# per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def encodeJSON(body):
    """@return: C{body} as compact JSON bytes."""
    return _encode(body).encode()

# json.loads's own scanner (C), for bodies that are plainly an object in
# UTF-8: json.loads spends more on choosing the encoding and on its Python
# wrappers than on a small body.
_scan = json.JSONDecoder().scan_once
_whitespace = json.decoder.WHITESPACE.match


class HTTPError(Exception):
    """
    An error answered as C{{"error": {"code", "message", "fields"?,
    "retry_after"?}}}: C{retry_after} (seconds) is there whenever the
    answer has a C{Retry-After} header, and says the same.
    """

    def __init__(self, status, code, message, fields=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self):
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        retry = self.headers.get("Retry-After")
        if retry is not None:
            error["retry_after"] = retry
        return {"error": error}


def writeJSON(request, status, body, headers=None):
    """
    Finish C{request} with C{body} as JSON, unless the client has gone.

    @param body: what to encode, or C{bytes} already encoded (a hot path
        that writes its answer out itself).
    """
    if requestDisconnected(request) or request.finished:
        return
    payload = body if type(body) is bytes else _encode(body).encode()
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), value if type(value) is bytes else str(value).encode())
    request.setHeader(b"content-length", str(len(payload)).encode())
    if request.method != b"HEAD":
        # On a DirectHTTPChannel the headers and body leave in one send().
        channel = request.channel
        cork = getattr(channel, "cork", None)
        if cork is None:
            request.write(payload)
        else:
            cork()
            try:
                request.write(payload)
            finally:
                channel.uncork()
    request.finish()


def readJSON(request, maxBody=MAX_BODY):
    """
    @return: the request body parsed as a JSON object (dict).
    @raise HTTPError: 413 when over C{maxBody}, 400 for anything not a JSON
        object.
    """
    content = request.content
    if isinstance(content, BytesIO):
        # twisted.web keeps small bodies in memory.
        raw = content.getvalue()
        size = len(raw)
    else:
        content.seek(0, 2)
        size = content.tell()
        raw = None
    if size > maxBody:
        raise HTTPError(413, "request.too_large", f"body over {maxBody} bytes")
    if raw is None:
        content.seek(0)
        raw = content.read()
    try:
        # JSON is UTF-8 (RFC 8259): strictly, so no other encoding, no BOM
        # and no surrogate encoded in bytes gets through.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "request.malformed_json", "body is not UTF-8 text")
    try:
        if text[:1] == "{":
            # What json.loads does for a body that opens an object, step for
            # step: scan one value, allow only whitespace after it.
            data, end = _scan(text, 0)
            if end != len(text) and _whitespace(text, end).end() != len(text):
                raise ValueError("extra data")
        else:
            data = json.loads(text or "{}")
    except (ValueError, StopIteration, RecursionError):
        # RecursionError: a body nested deeper than the parser's stack.
        raise HTTPError(400, "request.malformed_json", "body is not valid JSON")
    if "\\u" in text and hasLoneSurrogate(data):
        # A \ud800-\udfff escape not in a pair is no text: it would fail later,
        # in a database driver, a password hasher or an encoder.
        raise HTTPError(400, "request.invalid_text",
                        "a string in the body holds a lone surrogate")
    if not isinstance(data, dict):
        raise HTTPError(400, "request.malformed_json", "body must be a JSON object")
    return data


def hasLoneSurrogate(data):
    """@return: whether a string in C{data} (parsed JSON, keys included) is not encodable text."""
    # A stack, not recursion: the parser takes deeper nesting than the
    # interpreter's stack.
    stack = [data]
    pop, push = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif kind is dict:
            push(value)
            push(value.values())
        elif kind is list:
            push(value)
    return False


class JSONNotFound(Resource):
    """A typed 404 for unknown paths on the JSON sites."""

    isLeaf = True

    def render(self, request):
        writeJSON(
            request, 404, HTTPError(404, "request.not_found", "no such resource").body()
        )
        return NOT_DONE_YET


class JSONRoot(Resource):
    """
    A root or folder (C{/v1}) whose unknown children answer a typed 404, as
    does the folder itself, whatever the method (not Twisted's HTML 405 or
    C{501 Huh?}).
    """

    def render(self, request):
        return JSONNotFound().render(request)

    def getChild(self, path, request):
        return JSONNotFound()
