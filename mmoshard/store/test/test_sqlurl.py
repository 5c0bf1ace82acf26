"""The SQL store's pure text handling: URL parsing and placeholder conversion."""

from twisted.trial.unittest import SynchronousTestCase

from mmoshard.store import sql, sqlurl
from mmoshard.store.sql import parseSQLURL, toPyformat


class ParseSQLURLTests(SynchronousTestCase):
    """parseSQLURL: what a good URL gives, and what a bad one is told."""

    def test_importableFromSQL(self):
        """URL parsing lives in sqlurl.py; sql.py still offers its names."""
        for name in sqlurl.__all__:
            self.assertIs(getattr(sql, name), getattr(sqlurl, name), name)

    def test_sqliteRelative(self):
        """Three slashes give a path relative to the working directory."""
        u = parseSQLURL("sqlite:///var/mmoshard.sqlite3")
        self.assertEqual((u.dialect, u.path), ("sqlite", "var/mmoshard.sqlite3"))

    def test_sqliteAbsolute(self):
        """Four slashes give an absolute path."""
        self.assertEqual(parseSQLURL("sqlite:////srv/db.sqlite3").path, "/srv/db.sqlite3")

    def test_mysql(self):
        """
        A full mysql:// URL gives user, unquoted password, host, port, database and options; the
        password is kept out of the repr and the redacted form.
        """
        u = parseSQLURL("mysql://game:p%40ss%3Aword@db.example:3307/mmo?read_timeout=5")
        self.assertEqual(
            (u.dialect, u.user, u.password, u.host, u.port, u.database),
            ("mysql", "game", "p@ss:word", "db.example", 3307, "mmo"),
        )
        self.assertEqual(u.options["read_timeout"], 5.0)
        self.assertEqual(u.options["connect_timeout"], 5.0)
        self.assertEqual(u.redacted(), "mysql://game:***@db.example:3307/mmo")
        self.assertNotIn("p@ss", repr(u))

    def test_mysqlDefaultPort(self):
        """A mysql:// URL without a port uses 3306."""
        self.assertEqual(parseSQLURL("mysql://root@localhost/mmo").port, 3306)

    def test_bad(self):
        """
        Each kind of bad URL is refused with a ValueError naming the problem, never showing the
        password.
        """
        for url, words in [
            ("", "non-empty"),
            ("postgres://x/y", "unsupported SQL URL scheme 'postgres'"),
            ("sqlite://", "needs a path"),
            ("sqlite://host/path", "host part"),
            ("mysql://host", "mysql://user:password@host:port/database"),
            ("mysql://root:secret@/db", "mysql://user:password@host:port/database"),
            ("mysql://h:notaport/db", "bad port"),
            ("mysql://h/db?colour=red", "unknown mysql URL option 'colour'"),
            ("mysql://h/db?read_timeout=soon", "number of seconds"),
        ]:
            with self.assertRaises(ValueError, msg=url) as cm:
                parseSQLURL(url)
            self.assertIn(words, str(cm.exception), url)
            self.assertNotIn("secret", str(cm.exception))


class PlaceholderTests(SynchronousTestCase):
    """toPyformat: C{?} becomes pymysql's C{%s}, literals and comments kept."""

    def test_convert(self):
        """Bare C{?} placeholders become C{%s}."""
        self.assertEqual(
            toPyformat("SELECT * FROM t WHERE a = ? AND b = ?"),
            "SELECT * FROM t WHERE a = %s AND b = %s",
        )

    def test_literals(self):
        """
        C{?} and C{%} inside strings, quoted names and comments stay as they are, C{%} doubled.
        """
        self.assertEqual(
            toPyformat("SELECT '50% ?', \"?\", `a?` FROM t WHERE x LIKE ? -- why?\n"),
            "SELECT '50%% ?', \"?\", `a?` FROM t WHERE x LIKE %s -- why?\n",
        )

    def test_escapedQuotes(self):
        """Doubled and backslash-escaped quotes do not end a string early."""
        self.assertEqual(
            toPyformat("SELECT 'it''s ?', 'a\\'?', ? /* ? */"),
            "SELECT 'it''s ?', 'a\\'?', %s /* ? */",
        )

    def test_percentOutsideStrings(self):
        """A C{%} operator outside strings is doubled for pymysql."""
        self.assertEqual(toPyformat("SELECT 7 % ?"), "SELECT 7 %% %s")
