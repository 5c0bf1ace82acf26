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
        if raw[:1] == b"{" and raw[1:2] != b"\0":
            # What json.loads does for a body that opens an object and is
            # not UTF-16 or UTF-32 (no NUL after the brace), step for step:
            # decode as UTF-8, scan one value, allow only whitespace after it.
            text = raw.decode("utf-8", "surrogatepass")
            data, end = _scan(text, 0)
            if end != len(text) and _whitespace(text, end).end() != len(text):
                raise ValueError("extra data")
        else:
            data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, StopIteration, RecursionError):
        # RecursionError: a body nested deeper than the parser's stack.
        raise HTTPError(400, "request.malformed_json", "body is not valid JSON")
    if not isinstance(data, dict):
        raise HTTPError(400, "request.malformed_json", "body must be a JSON object")
    return data


class JSONNotFound(Resource):
    """A typed 404 for unknown paths on the JSON sites."""

    isLeaf = True

    def render(self, request):
        writeJSON(
            request, 404, HTTPError(404, "request.not_found", "no such resource").body()
        )
        return NOT_DONE_YET


class JSONRoot(Resource):
    """A root whose unknown children answer a typed 404."""

    def getChild(self, path, request):
        return JSONNotFound()
