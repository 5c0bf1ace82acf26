"""Request validation: any JSON at all comes out as a checked dict or a typed 400."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from types import SimpleNamespace

from mmoshard.auth.api import AuthAPI
from mmoshard.auth.config import makeConfig
from mmoshard.auth.gamedata import loadGameData
from mmoshard.web.routes import routesOf
from mmoshard.web.schema import Prop, validate
from mmoshard.web.json import HTTPError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_CONFIG = makeConfig()
BODIES = [r.body for r in routesOf(AuthAPI(SimpleNamespace(
    config=_CONFIG, gameData=loadGameData(_CONFIG.classes_file)))) if r.body is not None]


class ValidateTests(TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(BODIES),
           st.dictionaries(st.sampled_from(["username", "password", "email", "name",
                                            "class", "refresh_token", "current_password",
                                            "new_password", "extra"]), JSON, max_size=6))
    def test_any_body(self, props, data):
        """
        For any body, validate either answers every declared field passing its
        checks or refuses with a serialisable 400 naming fields.
        """
        try:
            result = validate(data, props)
        except HTTPError as e:
            self.assertEqual((e.status, e.code), (400, "request.invalid"))
            self.assertTrue(e.fields)
            json.dumps(e.body())  # always serialisable
            return
        self.assertEqual(set(result), set(props))
        for name, prop in props.items():
            value = result[name]
            if value is not None:
                self.assertIsNone(prop.check(value))

    def test_messages(self):
        """
        Refusals name each bad field with a readable reason, unknown fields
        included; absent optional fields are None.
        """
        props = {"n": Prop("integer", minimum=1, maximum=5), "s": Prop("string", maxLength=2),
                 "o": Prop("string", required=False)}
        with self.assertRaises(HTTPError) as cm:
            validate({"n": True, "s": "abc", "x": 1}, props)
        self.assertEqual(cm.exception.fields, {"n": "must be an integer",
                                               "s": "must be at most 2 characters",
                                               "x": "unknown field"})
        self.assertEqual(validate({"n": 3, "s": "ab"}, props), {"n": 3, "s": "ab", "o": None})
