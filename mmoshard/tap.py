"""The twistd options and service maker behind `twistd mmoshard`."""

import gc

from twisted.python import usage

from mmoshard.config import ConfigError, loadConfig


class Options(usage.Options):
    """Command-line options of `twistd mmoshard`."""

    optParameters = [
        ["config", "c", None, "TOML config file (default: every default, embedded stores)"],
        ["roles", "r", None, "comma-separated roles to host, overriding the config"],
        ["node-id", "s", None, "this process's node id, overriding the config"],
    ]

    def postOptions(self):
        # Everything that can be checked without I/O is checked here, so a bad
        # config or a missing role stops twistd before anything listens.
        from mmoshard.plugins import discoverRoles
        from mmoshard.node import checkRequirements, selectRoles

        roles = None
        if self["roles"] is not None:
            roles = [r.strip() for r in self["roles"].split(",") if r.strip()]
        try:
            plugins = discoverRoles()
            config = loadConfig(
                self["config"], plugins=plugins, roles=roles, nodeId=self["node-id"]
            )
            selected = selectRoles(config, plugins)
            checkRequirements(config, selected)
        except (ConfigError, ValueError) as e:
            raise usage.UsageError(str(e))
        self["_config"] = config
        self["_roles"] = selected


def makeService(options):
    """Build the node's root service for twistd."""
    from twisted.internet import reactor

    from mmoshard.node import buildNode

    config = options["_config"]
    # A server holds many long-lived objects (sessions, replay buffers,
    # entities): CPython's default thresholds make it run full collections
    # every second or two, each a pause of up to hundreds of ms at 5,000
    # sessions (docs/benchmarks.md, C1).  Process-wide, so set here and not
    # by the Node, which tests run in-process.
    gc.set_threshold(*config.node.gc_threshold)
    root = buildNode(config, reactor, options["_roles"])
    root.exitOnFailure = True
    # What start-up allocated lives as long as the process: keep it out of
    # every later collection.
    root.whenStarted().addCallback(lambda _: gc.freeze())
    return root
