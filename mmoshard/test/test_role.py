"""RoleContext: a role reaches exactly the interfaces its Role declares."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import Interface
from zope.interface.registry import Components

from mmoshard.role import Role, RoleContext, UndeclaredInterface


class IRequired(Interface):
    """Required by the test role and provided."""


class IUsedPresent(Interface):
    """Used by the test role and provided."""


class IUsedAbsent(Interface):
    """Used by the test role, provided by nothing."""


class IUndeclared(Interface):
    """Provided, but not declared by the test role."""


ROLE = Role(
    name="test", factory=None, requires=(IRequired,), uses=(IUsedPresent, IUsedAbsent)
)


class ProvidersTests(TestCase):
    def setUp(self):
        self.registry = Components()
        self.required, self.used, self.undeclared = object(), object(), object()
        self.registry.registerUtility(self.required, IRequired)
        self.registry.registerUtility(self.used, IUsedPresent)
        self.registry.registerUtility(self.undeclared, IUndeclared)
        self.ctx = RoleContext(
            role=ROLE, config=None, nodeConfig=None, reactor=Clock(), nodeId="n",
            metrics=None, registry=self.registry, readinessChecks={},
            tokenKeySource=lambda: "key",
        )

    def test_providersByKeyword(self):
        """Each keyword gets its interface's provider; a used interface nothing provides gets None."""
        self.assertEqual(
            self.ctx.providers(a=IRequired, b=IUsedPresent, c=IUsedAbsent),
            {"a": self.required, "b": self.used, "c": None},
        )

    def test_requiredMissing(self):
        """A required interface nothing provides is a LookupError, as with require."""
        self.registry.unregisterUtility(self.required, IRequired)
        self.assertRaises(LookupError, self.ctx.providers, a=IRequired)

    def test_undeclaredRefused(self):
        """An interface the role does not declare is refused even when provided."""
        self.assertRaises(UndeclaredInterface, self.ctx.providers, a=IUndeclared)
