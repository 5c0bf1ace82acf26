"""Migration files: statement splitting and the layout of shared and per-dialect migrations."""

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mmoshard.store import sql
from mmoshard.store.sql import MigrationError, migrationsAvailable, splitStatements
from mmoshard.testing import checkoutRoot

# The checkout's sql/, which an installed copy must match.
REPO = Path(checkoutRoot())


class SplitStatementsTests(SynchronousTestCase):
    """splitStatements cuts a migration file into statements."""

    def test_split(self):
        """
        Comments are dropped, statements are cut at the semicolons that end a line, a semicolon in
        a string is kept.
        """
        text = (
            "-- a comment;\n"
            "CREATE TABLE a (\n"
            "    -- inner comment;\n"
            "    x INT\n"
            ");\n"
            "\n"
            "INSERT INTO a VALUES (1); \n"
            "INSERT INTO a VALUES (';')\n"
        )
        self.assertEqual(
            splitStatements(text),
            [
                "CREATE TABLE a (\n    x INT\n)",
                "INSERT INTO a VALUES (1)",
                "INSERT INTO a VALUES (';')",
            ],
        )

    def test_semicolonMidLine(self):
        """A semicolon inside a string literal does not split the statement."""
        self.assertEqual(splitStatements("SELECT 'a;b';\n"), ["SELECT 'a;b'"])


class MigrationLayoutTests(SynchronousTestCase):
    """migrationsAvailable finds each dialect's migrations and refuses bad layouts."""

    def test_importableFromSQL(self):
        """The migration machinery moved to migrations.py; sql.py still offers it."""
        from mmoshard.store import migrations

        for name in migrations.__all__:
            self.assertIs(getattr(sql, name), getattr(migrations, name), name)

    def layout(self, files):
        root = Path(self.mktemp())
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def test_sharedAndOverrides(self):
        """
        Shared migrations apply to both dialects, a dialect's own file overrides the shared one of
        the same name, other files are ignored.
        """
        root = self.layout(
            {
                "0001_base.sql": "SELECT 1;",
                "mysql/0001_base.sql": "SELECT 'mysql';",
                "0002_data.sql": "SELECT 2;",
                "sqlite/0003_tweak.sql": "SELECT 3;",
                "mysql/0003_tweak.sql": "SELECT 3;",
                "README.md": "not a migration",
            }
        )
        mysql = migrationsAvailable("mysql", root)
        self.assertEqual(
            [(m.version, m.name) for m in mysql],
            [(1, "0001_base"), (2, "0002_data"), (3, "0003_tweak")],
        )
        self.assertEqual(mysql[0].path, root / "mysql" / "0001_base.sql")
        self.assertEqual(migrationsAvailable("sqlite", root)[0].path, root / "0001_base.sql")

    def test_gap(self):
        """A dialect whose versions skip a number is refused, naming the missing version."""
        root = self.layout({"0001_a.sql": "", "sqlite/0003_c.sql": ""})
        self.assertEqual(len(migrationsAvailable("mysql", root)), 1)
        with self.assertRaises(MigrationError) as cm:
            migrationsAvailable("sqlite", root)
        self.assertIn("skip version(s) 2", str(cm.exception))

    def test_duplicate(self):
        """Two migrations with one version are refused."""
        root = self.layout({"0001_a.sql": "", "0001_b.sql": ""})
        with self.assertRaises(MigrationError) as cm:
            migrationsAvailable("sqlite", root)
        self.assertIn("two migrations with version 1", str(cm.exception))

    def test_overrideWithOtherName(self):
        """A dialect file overriding a shared version under another name is refused."""
        root = self.layout({"0001_a.sql": "", "mysql/0001_b.sql": ""})
        self.assertRaises(MigrationError, migrationsAvailable, "mysql", root)

    def test_badName(self):
        """A file not named NNNN_name.sql is refused."""
        root = self.layout({"1_a.sql": ""})
        self.assertRaises(MigrationError, migrationsAvailable, "mysql", root)

    def test_missingDirectory(self):
        """A migrations directory that does not exist is refused."""
        self.assertRaises(MigrationError, migrationsAvailable, "mysql", self.mktemp())

    def test_repositoryMigrationsAgree(self):
        """Both dialects have the same versions and names, and the default dir holds the checkout's files."""
        def files(root):
            return sorted(str(p.relative_to(root)) for p in root.rglob("*.sql"))

        self.assertEqual(files(sql.DEFAULT_MIGRATIONS_DIR), files(REPO / "sql"))
        names = {
            d: [(m.version, m.name) for m in migrationsAvailable(d)] for d in sql.DIALECTS
        }
        self.assertEqual(names["mysql"], names["sqlite"])
        self.assertEqual(names["mysql"][0], (1, "0001_accounts_characters"))
        for d in sql.DIALECTS:
            for m in migrationsAvailable(d):
                self.assertTrue(m.statements(), m.path)
