"""docs/matchmaking.md against the code: every key of a queue and every column of the rating tables is documented."""

import os
import re

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.loading import QUEUE_KEYS
from mmoshard.testing import checkoutRoot


def section(text, title):
    """@return: the text of C{text}'s "## C{title}" section."""
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def migration(dialect):
    with open(os.path.join(checkoutRoot(), "sql", dialect, "0009_matchmaking.sql"), encoding="utf-8") as f:
        return f.read()


class DocsTests(TestCase):
    """The Queues and Ratings sections cover what the loader reads and the migration creates."""

    def setUp(self):
        with open(os.path.join(checkoutRoot(), "docs", "matchmaking.md"), encoding="utf-8") as f:
            self.text = f.read()

    def test_queueKeys(self):
        """Each key a [queues.<id>] table may have has a row in the Queues section's table, and no row names an unknown key."""
        rows = set(re.findall(r"^\| `([a-z_]+)` \|", section(self.text, "Queues"), re.MULTILINE))
        self.assertEqual(rows, set(QUEUE_KEYS) | {"quotas"})

    def test_ratingColumns(self):
        """Each column of mm_ratings and mm_results, on both dialects, is named in the Ratings section."""
        ratings = section(self.text, "Ratings")
        for dialect in ("mysql", "sqlite"):
            for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\)", migration(dialect), re.DOTALL):
                columns = re.findall(r"^    (\w+) [A-Z]", body, re.MULTILINE)
                columns = [c for c in columns if c not in ("PRIMARY", "KEY", "CONSTRAINT")]
                self.assertIn(f"`{table}`", ratings)
                self.assertTrue(columns)
                for column in columns:
                    self.assertIn(f"`{column}`", ratings, (dialect, table))
