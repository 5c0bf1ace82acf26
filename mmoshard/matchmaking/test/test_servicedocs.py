"""docs/matchmaking.md documents every mm.* request and event with its fields, every error code and reason, every [matchmaking] key and every message between matchmaking nodes."""

import os
import re

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.config import FIELDS
from mmoshard.matchmaking.events import EVENT_TYPES, KINDS, REASONS
from mmoshard.matchmaking.handlers import REQUEST_TYPES
from mmoshard.testing import checkoutRoot
from mmoshard.wire.test.docs import documentedFields, undocumentedTypes


class ServiceDocsTests(TestCase):
    def setUp(self):
        with open(os.path.join(checkoutRoot(), "docs", "matchmaking.md")) as f:
            self.text = f.read()

    def test_typesDocumented(self):
        """Every mm.* request the role registers and every event it sends is documented."""
        self.assertEqual(undocumentedTypes(REQUEST_TYPES + EVENT_TYPES), [])
        self.assertEqual(documentedFields()["mm.queue"], {"queue", "roles"})
        self.assertEqual(documentedFields()["mm.proposal"],
                         {"match", "queue", "team", "role", "roles", "expires_in", "accepted"})

    def test_errorCodesDocumented(self):
        """Every mm.* error code has a row in the Errors table."""
        rows = set(re.findall(r"^\| `(mm\.[a-z_]+)` \|", self.text, re.MULTILINE))
        self.assertEqual(sorted(set(errors.CODES) - rows), [])

    def test_reasonsDocumented(self):
        """Every reason of mm.requeued / mm.removed has a row."""
        rows = set(re.findall(r"^\| `([a-z_]+)` \|", self.text, re.MULTILINE))
        self.assertEqual(sorted(set(REASONS) - rows), [])

    def test_configKeysDocumented(self):
        """Every [matchmaking] key has a row in the Configuration table."""
        rows = set(re.findall(r"^\| `([a-z_]+)` \|", self.text, re.MULTILINE))
        self.assertEqual(sorted(set(FIELDS) - rows), [])

    def test_messagesDocumented(self):
        """Every message between matchmaking nodes has a row with its kind and fields."""
        for cls, kind in KINDS.items():
            row = next((line for line in self.text.splitlines()
                        if line.startswith(f"| `{cls.__name__}` (`{kind}`)")), None)
            self.assertIsNotNone(row, cls.__name__)
            for field in attrs.fields(cls):
                self.assertIn(f"`{field.name}`", row, cls.__name__)

