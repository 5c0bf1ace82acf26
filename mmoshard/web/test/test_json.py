"""readJSON takes and refuses exactly what json.loads does."""

import json
from io import BytesIO

from twisted.trial.unittest import TestCase

from mmoshard.web.json import HTTPError, readJSON


class _Request:
    def __init__(self, body):
        self.content = BytesIO(body)


class ReadJSONTests(TestCase):
    def test_same_as_json_loads(self):
        """Every body parses, or fails as malformed, as json.loads has it."""
        bodies = [
            b'{"a":1}', b'{"a":1}  \n', b'{"a":1} x', b'{"a":1}{}', b"{", b"{}", b"{ }",
            b'{"a":"\\ud800"}', b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16-le"),
            '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"), b'{"a":"\xff"}', b"[1]",
            b"", b' {"a":1}', b'{"a":NaN}', b'{"a":1,"a":2}', b'{"a": "\xc3\xa9"}',
            b'{"a":1}\x00', b'{"a":[1,{"b":null}]}\t', b"{\x00",
        ]
        for body in bodies:
            try:
                expected = json.loads(body or b"{}")
            except ValueError:
                expected = None
            if not isinstance(expected, dict):
                with self.assertRaises(HTTPError, msg=body) as caught:
                    readJSON(_Request(body))
                self.assertEqual((caught.exception.status, caught.exception.code),
                                 (400, "request.malformed_json"))
            else:
                self.assertEqual(repr(readJSON(_Request(body))), repr(expected), body)

    def test_deeply_nested(self):
        """A body nested past the parser's stack is malformed, not a 500."""
        for body in (b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}",
                     b'{"a":' + b'{"b":' * 100000 + b"1" + b"}" * 100001):
            with self.assertRaises(HTTPError) as caught:
                readJSON(_Request(body), maxBody=1 << 20)
            self.assertEqual((caught.exception.status, caught.exception.code),
                             (400, "request.malformed_json"))

    def test_too_large(self):
        """A body over the limit is refused with 413 before it is parsed."""
        with self.assertRaises(HTTPError) as caught:
            readJSON(_Request(b'{"a":"' + b"x" * 100 + b'"}'), maxBody=50)
        self.assertEqual(caught.exception.status, 413)
