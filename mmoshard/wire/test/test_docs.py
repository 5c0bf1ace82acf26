"""docs/protocol.md documents every message type and error code."""

from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.messages import BUILTIN_TYPES
from mmoshard.wire.test.docs import documentedErrorCodes, documentedTypes, undocumentedTypes
from mmoshard.wire.test.helpers import Server


class DocsTests(TestCase):
    def test_builtinTypesDocumented(self):
        """Every built-in message type is documented under docs/."""
        server = Server(self)
        self.assertEqual(undocumentedTypes(server.manager.messageTypes), [])
        self.assertTrue(BUILTIN_TYPES <= documentedTypes())

    def test_registeredTypesChecked(self):
        """undocumentedTypes reports a registered type no page documents."""
        server = Server(self)
        server.manager.addHandlers("zzdoc", {"zzdoc.thing": lambda s, m: None})
        self.assertEqual(undocumentedTypes(server.manager.messageTypes), ["zzdoc.thing"])

    def test_errorCodesDocumented(self):
        """docs/protocol.md's error table lists exactly the error codes of mmoshard.wire.errors."""
        self.assertEqual(documentedErrorCodes(), set(errors.CODES))
