"""Characters over REST: creation from game data, unique names, limits, soft delete and name release."""

from twisted.trial.unittest import TestCase

from mmoshard.auth.test.harness import AuthHarness


class CharacterTestsMixin:
    backend = None

    async def setUpAccount(self, **overrides):
        self.h = await AuthHarness(self, self.backend, **overrides).start()
        self.login = await self.h.account()
        self.token = self.login["access_token"]

    async def create(self, name, cls="warrior", token=None):
        return await self.h.request("POST", "/v1/characters", {"name": name, "class": cls},
                                    token=token or self.token)

    async def test_classes(self):
        """
        GET /v1/classes needs no token and lists the classes of the game data and
        the start zone.
        """
        await self.setUpAccount()
        r = await self.h.request("GET", "/v1/classes")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body["start_zone"], "greenvale")
        self.assertIn({"id": "mage", "name": "Mage", "role": "damage"},
                      [{k: c[k] for k in ("id", "name", "role")} for c in r.body["classes"]])

    async def test_create_and_list(self):
        """
        A new character starts at level 1 with no exp at the start zone's spawn and
        is listed with the account's limit.
        """
        await self.setUpAccount()
        r = await self.create("Thrall", "warrior")
        self.assertEqual(r.code, 201, r)
        c = r.body
        self.assertEqual((c["name"], c["class"], c["level"], c["exp"], c["zone"]),
                         ("Thrall", "warrior", 1, 0, "greenvale"))
        self.assertEqual(c["position"], {"x": 128.0, "y": 0.0, "z": 64.0})
        r = await self.h.request("GET", "/v1/characters", token=self.token)
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, {"characters": [c], "limit": 8})

    async def test_errors(self):
        """
        An unknown class, a name with digits or too short, a missing class and a
        missing token are refused.
        """
        await self.setUpAccount()
        r = await self.create("Jaina", "necromancer")
        self.assertEqual((r.code, r.error), (400, "request.invalid"))
        self.assertIn("class", r.body["error"]["fields"])
        r = await self.create("J4ina", "mage")
        self.assertEqual((r.code, r.error), (400, "request.invalid"))
        r = await self.create("Jo", "mage")
        self.assertEqual(r.body["error"]["fields"], {"name": "must be at least 3 characters"})
        r = await self.h.request("GET", "/v1/characters")
        self.assertEqual((r.code, r.error), (401, "auth.invalid_token"))
        r = await self.h.request("POST", "/v1/characters", {"name": "Jaina"}, token=self.token)
        self.assertEqual(r.body["error"]["fields"], {"class": "is required"})

    async def test_name_unique_across_accounts_ignoring_case(self):
        """A character name is taken for every account, in any case."""
        await self.setUpAccount()
        self.assertEqual((await self.create("Arthas")).code, 201)
        other = (await self.h.account("bob"))["access_token"]
        r = await self.create("aRTHAS", "paladin", token=other)
        self.assertEqual((r.code, r.error), (409, "character.name_taken"))
        r = await self.create("Arthas", "paladin", token=self.token)
        self.assertEqual((r.code, r.error), (409, "character.name_taken"))

    async def test_retried_creation_answers_the_first(self):
        """
        Creating again a character this account has, same name and class (a
        client retrying after a lost answer or a 503), answers that character
        with 201 and makes no second one, even at the character limit.
        """
        await self.setUpAccount(max_characters=1)
        first = await self.create("Thrall")
        self.assertEqual(first.code, 201)
        again = await self.create("Thrall")
        self.assertEqual((again.code, again.body), (201, first.body))
        r = await self.h.request("GET", "/v1/characters", token=self.token)
        self.assertEqual([c["id"] for c in r.body["characters"]], [first.body["id"]])

    async def test_limit(self):
        """
        Past max_characters creating is 409 character.limit_reached; a deleted
        character no longer counts.
        """
        await self.setUpAccount(max_characters=2)
        self.assertEqual((await self.create("Anduin")).code, 201)
        self.assertEqual((await self.create("Varian")).code, 201)
        r = await self.create("Tyrande")
        self.assertEqual((r.code, r.error), (409, "character.limit_reached"))
        # A deleted character no longer counts.
        first = (await self.h.request("GET", "/v1/characters", token=self.token)).body
        cid = first["characters"][0]["id"]
        r = await self.h.request("DELETE", f"/v1/characters/{cid}", token=self.token)
        self.assertEqual(r.code, 200)
        self.assertEqual((await self.create("Tyrande")).code, 201)

    async def test_delete_is_soft_and_frees_name_later(self):
        """
        Deleting hides a character and keeps its name reserved for
        name_release_after; then another account may take the name, and the old row
        stays for an operator.
        """
        await self.setUpAccount(name_release_after=3600.0)
        cid = (await self.create("Illidan")).body["id"]
        r = await self.h.request("DELETE", f"/v1/characters/{cid}", token=self.token)
        self.assertEqual(r.code, 200, r)
        self.assertEqual(r.body["name_free_at"], self.h.clock.seconds() + 3600)
        listed = await self.h.request("GET", "/v1/characters", token=self.token)
        self.assertEqual(listed.body["characters"], [])
        r = await self.h.request("DELETE", f"/v1/characters/{cid}", token=self.token)
        self.assertEqual((r.code, r.error), (404, "character.not_found"))
        # The name stays reserved for a while, then anyone may take it.
        other = (await self.h.account("bob"))["access_token"]
        self.assertEqual((await self.create("illidan", token=other)).code, 409)
        self.h.clock.advance(3601)
        other = (await self.h.login("bob")).body["access_token"]
        r = await self.create("illidan", "druid", token=other)
        self.assertEqual(r.code, 201, r)
        # The row survives for an operator, who cannot restore it now the
        # name is taken.
        r = await self.h.request("POST", f"/characters/{cid}/restore", admin=True)
        self.assertEqual((r.code, r.error), (409, "character.name_taken"))
        rows = await self.h.sql.runQuery(
            "SELECT name, deleted_at IS NOT NULL FROM characters WHERE id = ?", (cid,))
        self.assertEqual([tuple(r) for r in rows], [("Illidan", 1)])

    async def test_restore(self):
        """
        An operator's restore brings a deleted character back to its account's list;
        restoring a live one is 404.
        """
        await self.setUpAccount()
        cid = (await self.create("Sylvanas")).body["id"]
        await self.h.request("DELETE", f"/v1/characters/{cid}", token=self.token)
        r = await self.h.request("POST", f"/characters/{cid}/restore", admin=True)
        self.assertEqual((r.code, r.body), (200, {"restored": cid}))
        listed = await self.h.request("GET", "/v1/characters", token=self.token)
        self.assertEqual([c["id"] for c in listed.body["characters"]], [cid])
        r = await self.h.request("POST", f"/characters/{cid}/restore", admin=True)
        self.assertEqual((r.code, r.error), (404, "character.not_found"))

    async def test_delete_someone_elses(self):
        """
        Deleting another account's character is 404 character.not_found and leaves
        it alone.
        """
        await self.setUpAccount()
        cid = (await self.create("Garrosh")).body["id"]
        other = (await self.h.account("bob"))["access_token"]
        r = await self.h.request("DELETE", f"/v1/characters/{cid}", token=other)
        self.assertEqual((r.code, r.error), (404, "character.not_found"))
        listed = await self.h.request("GET", "/v1/characters", token=self.token)
        self.assertEqual(len(listed.body["characters"]), 1)


class SQLiteMemoryCharacterTests(CharacterTestsMixin, TestCase):
    backend = "sqlite"


class MariaDBRedisCharacterTests(CharacterTestsMixin, TestCase):
    backend = "mysql"
