"""docs/chat.md lists every chat error code, chat.* request type, config key and cross-process message."""

import os
import re

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.chat import errors
from mmoshard.chat.config import FIELDS
from mmoshard.chat.test.harness import Process
from mmoshard.testing import checkoutRoot


class DocsTests(TestCase):
    def setUp(self):
        with open(os.path.join(checkoutRoot(), "docs", "chat.md")) as f:
            self.text = f.read()

    def test_error_codes_documented(self):
        """docs/chat.md names every chat error code."""
        documented = set(re.findall(r"`(chat\.[a-z_]+)`", self.text))
        self.assertEqual(sorted(errors.CODES - documented), [])

    def test_request_types_documented(self):
        """docs/chat.md names every chat.* request type the service registers."""
        proc = Process("docs", sql=None, volatile=None, clock=Clock())
        table = proc.chat.table()
        missing = [t for t in table if f"`{t}`" not in self.text]
        self.assertEqual(missing, [])

    def test_messages_documented(self):
        """docs/chat.md lists every message class chat processes send each other, with its kind and fields."""
        import attrs

        from mmoshard.chat.messages import KINDS

        for cls, kind in KINDS.items():
            row = next(
                (line for line in self.text.splitlines()
                 if line.startswith(f"| `{cls.__name__}` (`{kind}`)")), None
            )
            self.assertIsNotNone(row, cls.__name__)
            for field in attrs.fields(cls):
                self.assertIn(f"`{field.name}`", row, cls.__name__)

    def test_config_keys_documented(self):
        """docs/chat.md names every [chat] config key."""
        missing = [k for k in FIELDS if f"`{k}`" not in self.text]
        self.assertEqual(missing, [])
