"""Tests for role discovery, third-party role plugins and the twistd options."""

import os
import sys
import textwrap

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IRole
from mmoshard.plugins import discoverRoles
from mmoshard.tap import Options

THIRD_PARTY = '''
"""A role shipped by another package."""
from twisted.application.service import Service
from zope.interface import Interface
from mmoshard.config import Field
from mmoshard.role import Role

class IGreeter(Interface):
    """Says hello."""

class INeedsFriend(Interface):
    """Provided by nobody."""

greeter = Role(
    name="greeter",
    factory=lambda node: Service(),
    provides=(IGreeter,),
    fields={"word": Field("str", "hello")},
)
lonely = Role(
    name="lonely",
    factory=lambda node: Service(),
    requires=(INeedsFriend,),
)
'''


class DiscoveryTests(TestCase):
    def addThirdPartyPlugin(self):
        base = self.mktemp()
        pluginDir = os.path.join(base, "mmoshard", "plugins")
        os.makedirs(pluginDir)
        with open(os.path.join(pluginDir, "thirdparty_greeter.py"), "w") as f:
            f.write(textwrap.dedent(THIRD_PARTY))
        sys.path.insert(0, os.path.abspath(base))
        self.addCleanup(sys.path.remove, os.path.abspath(base))
        import mmoshard.plugins

        before = list(mmoshard.plugins.__path__)
        self.addCleanup(setattr, mmoshard.plugins, "__path__", before)
        self.addCleanup(sys.modules.pop, "mmoshard.plugins.thirdparty_greeter", None)

    def test_twistd_plugin_found(self):
        """twistd finds the mmoshard service maker."""
        names = [p.tapname for p in getPlugins(IServiceMaker)]
        self.assertIn("mmoshard", names)

    def test_installed_roles_are_roles(self):
        """Every installed role plugin provides IRole."""
        for role in discoverRoles():
            verifyObject(IRole, role)

    def test_third_party_role_from_path(self):
        """A role plugin in another directory on sys.path is found without touching mmoshard."""
        self.assertNotIn("greeter", [r.name for r in discoverRoles()])
        self.addThirdPartyPlugin()
        roles = {r.name: r for r in discoverRoles()}
        self.assertIn("greeter", roles)
        verifyObject(IRole, roles["greeter"])
        options = Options()
        options.parseOptions(["--roles", "greeter", "--node-id", "s1"])
        config = options["_config"]
        self.assertEqual(config.node.roles, ("greeter",))
        self.assertEqual(config.node.id, "s1")
        self.assertEqual(config.roleConfig("greeter"), {"word": "hello"})

    def test_unknown_role_stops_options(self):
        """twistd's options refuse an unknown role, naming the available ones."""
        options = Options()
        with self.assertRaises(usage.UsageError) as cm:
            options.parseOptions(["--roles", "nosuchrole"])
        self.assertIn("nosuchrole", str(cm.exception))
        self.assertIn("available:", str(cm.exception))

    def test_missing_requirement_stops_options(self):
        """A role whose required interface has no provider names what is missing."""
        self.addThirdPartyPlugin()
        options = Options()
        with self.assertRaises(usage.UsageError) as cm:
            options.parseOptions(["--roles", "lonely,greeter"])
        message = str(cm.exception)
        self.assertIn("'lonely' requires INeedsFriend", message)
        self.assertIn("no installed role provides it", message)

    def test_bad_config_file_stops_options(self):
        """twistd's options refuse a bad config file, reporting every bad key at once."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[listen]\nhttp = "nope:1"\n[sql]\npool_min = "x"\n')
        options = Options()
        with self.assertRaises(usage.UsageError) as cm:
            options.parseOptions(["--config", path])
        self.assertIn("listen.http", str(cm.exception))
        self.assertIn("sql.pool_min", str(cm.exception))
