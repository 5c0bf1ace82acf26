"""DirectHTTPChannel answers byte for byte as twisted.web's own channel, over real TCP."""

import re

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from mmoshard.web.channel import DirectHTTPChannel, directChannel
from mmoshard.web.json import JSONRoot, readJSON
from mmoshard.web.routes import Router, route

BIG = 4 * 1024 * 1024


class Endpoints:
    """JSON answers of each kind, small, big and chunk-free, through the router."""

    @route("GET", "/json", "A small answer", auth=False)
    async def hello(self, call):
        return 200, {"hello": "world", "n": 1}

    @route("POST", "/json", "The body echoed, with a header", auth=False)
    async def echo(self, call):
        return 201, {"got": readJSON(call.request)}, {"X-Extra": "yes"}

    @route("GET", "/big", "An answer bigger than a socket buffer", auth=False)
    async def big(self, call):
        return 200, b'{"x":"' + b"y" * BIG + b'"}'

    @route("GET", "/where", "The addresses the request saw", auth=False)
    async def where(self, call):
        request = call.request
        return 200, {"host": request.getHost().port, "peer": request.getClientAddress().port,
                     "direct": isinstance(request.channel, DirectHTTPChannel)}


class Stream(Resource):
    """Writes its body in pieces, later, without a length: chunked."""

    isLeaf = True

    def render_GET(self, request):
        def more(n):
            if n:
                request.write(b"piece %d;" % n)
                reactor.callLater(0.01, more, n - 1)
            else:
                request.finish()

        more(3)
        return NOT_DONE_YET


def root():
    r = JSONRoot()
    router = Router(Endpoints())
    for name in (b"json", b"big", b"where"):
        r.putChild(name, router)
    r.putChild(b"stream", Stream())
    return r


class Collect(Protocol):
    def __init__(self, request):
        self.request = request
        self.data = bytearray()
        self.done = Deferred()

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(bytes(self.data))


PIPELINED = (
    b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 9\r\n\r\n{\"a\": 1}\n"
    b"HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
    b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[1]"
    b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)


class DirectChannelTests(TestCase):
    async def serve(self, direct):
        site = Site(root(), parsePOSTFormSubmission=False)
        site.log = lambda request: None
        if direct:
            site.protocol = directChannel
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def exchange(self, port, request):
        proto = Collect(request)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        await endpoint.connect(Factory.forProtocol(lambda: proto))
        return await proto.done

    @staticmethod
    def normalise(raw):
        return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", raw)

    async def compare(self, request):
        plain = await self.exchange(await self.serve(False), request)
        direct = await self.exchange(await self.serve(True), request)
        self.assertEqual(self.normalise(direct), self.normalise(plain))
        return direct

    async def test_pipelined(self):
        """Answers of every kind, pipelined on one connection, in order and identical."""
        raw = await self.compare(PIPELINED)
        self.assertEqual(raw.count(b"HTTP/1.1 "), 7)
        self.assertIn(b"Transfer-Encoding: chunked", raw)
        self.assertIn(b"piece 3;", raw)
        self.assertIn(b'{"got":{"a":1}}', raw)
        self.assertIn(b"request.malformed_json", raw)

    async def test_big_answer(self):
        """An answer bigger than the socket takes at once: the rest is queued, in order."""
        raw = await self.compare(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(raw.endswith(b"y" * 1000 + b'"}'))
        self.assertEqual(len(raw.partition(b"\r\n\r\n")[2]), BIG + 8)

    async def test_addresses(self):
        """The request's own and peer addresses on a direct channel, the same on every request."""
        port = await self.serve(True)
        raw = await self.exchange(
            port,
            b"GET /where HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /where HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        bodies = re.findall(rb"\r\n\r\n(\{[^}]*\})", raw)
        self.assertEqual(len(bodies), 2)
        self.assertEqual(bodies[0], bodies[1])
        self.assertIn(b'"host":%d' % port, bodies[0])
        self.assertIn(b'"direct":true', bodies[0])
