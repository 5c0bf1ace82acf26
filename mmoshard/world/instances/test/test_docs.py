"""docs/instances.md against the code: its Protocol section (requests, events, error codes) and its table of the messages between processes."""

import os
import re
from types import SimpleNamespace

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.testing import checkoutRoot
from mmoshard.wire.test.docs import documentedFields
from mmoshard.world.handlers import BAD, BUSY, NOT_IN_WORLD
from mmoshard import instancewire as messages
from mmoshard.world.instances import errors
from mmoshard.world.instances.handlers import InstanceHandlers
from mmoshard.world.instances.test.bossfixture import Crypt, encounterEvents


def section(text, title):
    """@return: the text of C{text}'s "## C{title}" section."""
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


class DocsTests(TestCase):
    """docs/instances.md's Protocol and Hosting sections cover what the code sends, handles and answers."""

    def setUp(self):
        with open(os.path.join(checkoutRoot(), "docs", "instances.md"), encoding="utf-8") as f:
            self.text = f.read()
        self.protocol = section(self.text, "Protocol")

    def test_errorCodes(self):
        """Every instance.* error code, and each world code the requests answer, has a row in the Protocol section's error table."""
        rows = set(re.findall(r"^\| `([a-z_.]+)` \|", self.protocol, re.MULTILINE))
        answered = set(errors.CODES) | {BAD, BUSY, NOT_IN_WORLD}
        self.assertEqual(sorted(answered - rows), [])

    def test_requests(self):
        """Each request the instance handlers register is listed in the Protocol section; enter with both its fields."""
        handled = InstanceHandlers(None, SimpleNamespace(bySession={})).handlers()
        listed = set(re.findall(r"^- `([a-z.]+) \{", self.protocol, re.MULTILINE))
        self.assertEqual(sorted(set(handled) - listed), [])
        self.assertEqual(documentedFields()["world.instance.enter"], {"template", "ticket"})

    def test_events(self):
        """world.instance.refused and world.instance.grace are listed with the fields the code sends."""
        fields = documentedFields()
        self.assertEqual(fields["world.instance.grace"], {"instance_id", "seconds"})
        self.assertEqual(fields["world.instance.refused"],
                         {"template", "code", "message", "reset_at", "instance_id"})

    def test_encounterFields(self):
        """The fields of world.encounter as a boss's pull sends it are the documented ones."""
        crypt = Crypt()
        p = crypt.player(1, 50.0, 50.0)
        crypt.pull(p)
        [pull] = encounterEvents(p, "pull")
        self.assertEqual(set(pull), documentedFields()["world.encounter"])

    def test_messagesBetweenProcesses(self):
        """The Hosting section's table names each message between processes by its kind with exactly its fields."""
        hosting = section(self.text, "Hosting")
        for cls, kind in messages.KINDS.items():
            row = re.search(rf"^\| `{cls.__name__}` \(`{kind}`\) \| ([^|]*)\|", hosting, re.MULTILINE)
            self.assertIsNotNone(row, cls.__name__)
            self.assertEqual(re.findall(r"`(\w+)`", row.group(1)),
                             [f.name for f in attrs.fields(cls)], cls.__name__)
