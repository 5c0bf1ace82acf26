"""A stand-in IInstances for the M1 bench and the matchmaking crash test: a bench-only role that answers every create at once, with no world."""

import itertools
import os
import textwrap

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.config import Field, nonNegative
from mmoshard.interfaces import IInstances
from mmoshard.role import Role

# The role's name, as [node] roles lists it, and its config section.
ROLE = "benchinstances"

FIELDS = {
    "delay": Field("float", 0.0, nonNegative,
                   "seconds every create takes before it answers (a crash test's window)"),
}


@attrs.frozen
class StubConfig:
    """The [benchinstances] table: C{delay}, seconds every create takes."""

    delay: float = 0.0

# The plugin module a bench or a test writes into a plugin directory
# (twisted.plugin: <dir>/mmoshard/plugins/<name>.py, no __init__.py) and
# puts on the node's PYTHONPATH: the node then offers the role.
PLUGIN = textwrap.dedent('''\
    """The bench-only benchinstances role (mmoshard.bots.instancestub)."""

    from mmoshard.bots.instancestub import role as benchinstances  # noqa: F401
''')


def writePlugin(directory):
    """
    Write the plugin module of the role under C{directory}.

    @return: the path to put first on a node's PYTHONPATH.
    """
    plugins = os.path.join(directory, "mmoshard", "plugins")
    os.makedirs(plugins, exist_ok=True)
    with open(os.path.join(plugins, "mmoshard_benchinstances.py"), "w") as f:
        f.write(PLUGIN)
    return directory


@attrs.frozen
class StubPlacement:
    """What L{IInstances.create} answers (the fields of the world's Placement): nobody hosts it."""

    instance_id: int
    template: str
    zone: str
    node: str
    endpoints: dict
    tickets: dict


@implementer(IInstances)
class StubInstances:
    """
    L{IInstances} without a world: C{create} answers a placement on this
    node after C{delay} seconds (a new id each time, one ticket per
    character); nothing is hosted, so C{locate}, C{reopen} and C{admit}
    find nothing and C{close} forgets.  It measures the matchmaker, not
    instance creation (docs/benchmarks.md, M1).
    """

    log = Logger()

    def __init__(self, clock, nodeId, delay=0.0):
        self.clock = clock
        self.nodeId = nodeId
        self.delay = delay
        self.ids = itertools.count(1)
        self.open = {}  # instance id -> (template, roster, teams, match id)

    def create(self, template, roster, partyId=None, teams=None, matchId=None):
        iid = next(self.ids)
        roster = [int(c) for c in roster]
        self.open[iid] = (template, roster, teams, matchId)
        placement = StubPlacement(iid, template, f"{template}/{iid}", self.nodeId, {},
                                  {cid: f"stub-{self.nodeId}-{iid}-{cid}" for cid in roster})
        # Not logged: the matchmaker's "mm match ..." line names the instance.
        if self.delay > 0:
            return deferLater(self.clock, self.delay, lambda: placement)
        return succeed(placement)

    def close(self, instanceId):
        self.open.pop(int(instanceId), None)
        return succeed(None)

    def list(self):
        return succeed([{"instance_id": iid, "template": t, "node": self.nodeId,
                         "players": len(roster), "created_at": None}
                        for iid, (t, roster, _, _) in sorted(self.open.items())])

    def locate(self, instanceId):
        return succeed(None)

    def reopen(self, instanceId):
        return succeed(None)

    def admit(self, ticket, characterId):
        from mmoshard.wire.errors import ProtocolError

        return Deferred.fromCoroutine(_refuse(ProtocolError("instance.bad_ticket",
                                                            "stub instances admit nobody")))


async def _refuse(error):
    raise error


def _makeService(ctx):
    ctx.provide(IInstances, StubInstances(ctx.reactor, ctx.nodeId, ctx.config.delay))
    service = Service()
    service.setName(f"role:{ROLE}")
    return service


role = Role(name=ROLE, factory=_makeService, provides=(IInstances,), fields=FIELDS,
            configClass=StubConfig)
