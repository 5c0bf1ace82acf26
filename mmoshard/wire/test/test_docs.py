"""docs/protocol.md documents every message type and error code."""

from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.messages import BUILTIN_TYPES
from mmoshard.wire.test.docs import documentedErrorCodes, documentedTypes, undocumentedTypes
from mmoshard.wire.test.helpers import Server


class DocsTests(TestCase):
    def test_builtinTypesDocumented(self):
        server = Server(self)
        self.assertEqual(undocumentedTypes(server.manager.messageTypes), [])
        self.assertTrue(BUILTIN_TYPES <= documentedTypes())

    def test_registeredTypesChecked(self):
        server = Server(self)
        server.manager.addHandlers("zzdoc", {"zzdoc.thing": lambda s, m: None})
        self.assertEqual(undocumentedTypes(server.manager.messageTypes), ["zzdoc.thing"])

    def test_errorCodesDocumented(self):
        self.assertEqual(documentedErrorCodes(), set(errors.CODES))
