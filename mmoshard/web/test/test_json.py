"""readJSON takes and refuses what json.loads does on UTF-8 text, and refuses what is not text."""

import json
from io import BytesIO

from twisted.trial.unittest import TestCase

from mmoshard.web.json import HTTPError, readJSON


class _Request:
    def __init__(self, body):
        self.content = BytesIO(body)


class ReadJSONTests(TestCase):
    def test_same_as_json_loads(self):
        """Every UTF-8 body parses, or fails as malformed, as json.loads has it; other encodings are malformed."""
        bodies = [
            b'{"a":1}', b'{"a":1}  \n', b'{"a":1} x', b'{"a":1}{}', b"{", b"{}", b"{ }",
            b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16-le"),
            '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"), b'{"a":"\xff"}', b"[1]",
            b"", b' {"a":1}', b'{"a":NaN}', b'{"a":1,"a":2}', b'{"a": "\xc3\xa9"}',
            b'{"a":1}\x00', b'{"a":[1,{"b":null}]}\t', b"{\x00",
        ]
        for body in bodies:
            try:
                expected = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                expected = None
            if not isinstance(expected, dict):
                with self.assertRaises(HTTPError, msg=body) as caught:
                    readJSON(_Request(body))
                self.assertEqual((caught.exception.status, caught.exception.code),
                                 (400, "request.malformed_json"))
            else:
                self.assertEqual(repr(readJSON(_Request(body))), repr(expected), body)

    def test_not_text(self):
        """A lone surrogate, escaped or encoded, anywhere in the body (keys too) is refused as not text; pairs are text."""
        for body in (b'{"a":"\\ud800"}', b'{"a":["x",{"b":"\\udfff"}]}', b'{"\\udc80":1}',
                     b'{"a":"\\ude00\\ud83d"}'):
            with self.assertRaises(HTTPError, msg=body) as caught:
                readJSON(_Request(body))
            self.assertEqual((caught.exception.status, caught.exception.code),
                             (400, "request.invalid_text"), body)
        for body in (b'{"a":"\xed\xa0\x80"}', b'{"a":"\xff"}'):
            with self.assertRaises(HTTPError, msg=body) as caught:
                readJSON(_Request(body))
            self.assertEqual(caught.exception.code, "request.malformed_json", body)
        self.assertEqual(readJSON(_Request(b'{"a":"\\ud83d\\ude00 \\u00e9"}')), {"a": "\U0001f600 \xe9"})

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
