"""Every class in mmoshard that declares an mmoshard interface, test fakes included, implements it."""

import importlib
import inspect
import pkgutil

from twisted.trial.unittest import TestCase
from zope.interface import implementedBy
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyClass

import mmoshard


def allModules():
    """@return: every importable module of the mmoshard package, tests included."""
    modules = [mmoshard]
    for info in pkgutil.walk_packages(mmoshard.__path__, "mmoshard."):
        if info.name.startswith("mmoshard.plugins.") or info.name.endswith(".__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def declaredProviders():
    """@return: (class, interface) for each mmoshard interface a class of mmoshard declares."""
    pairs = set()
    for module in allModules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not cls.__module__.startswith("mmoshard"):
                continue
            for iface in implementedBy(cls).flattened():
                if isinstance(iface, InterfaceClass) and iface.__module__.startswith("mmoshard"):
                    pairs.add((cls, iface))
    return sorted(pairs, key=lambda p: (p[0].__module__, p[0].__qualname__, p[1].__name__))


class ContractTests(TestCase):
    def test_every_declared_provider_has_the_interface_methods(self):
        """Each class declaring an mmoshard interface (fakes too) defines every method of it with a compatible signature."""
        pairs = declaredProviders()
        # The core's providers and the test fakes of each package are found.
        names = {cls.__qualname__ for cls, _ in pairs}
        self.assertTrue({"SessionManager", "SQLStore", "MemoryStore", "TokenVerifier",
                         "StoreGate", "Directory", "SiteRoot"} <= names, names)
        problems = []
        for cls, iface in pairs:
            try:
                verifyClass(iface, cls)
            except Exception as e:
                problems.append(f"{cls.__module__}.{cls.__qualname__} as {iface.__name__}: {e}")
        self.assertEqual(problems, [])
