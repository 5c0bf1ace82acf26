"""A small IRole implementation so role plugin modules stay a few lines long."""

import attrs
from twisted.plugin import IPlugin
from zope.interface import implementer

from mmoshard.config import readTable
from mmoshard.interfaces import IRole


@implementer(IPlugin, IRole)
@attrs.frozen
class Role:
    """
    A role described by data: its name, what it provides and requires, its
    config fields (name -> L{mmoshard.config.Field}) and config class, and a
    service factory C{makeService(node)}.
    """

    name: str
    factory: object  # callable(node) -> IService
    configSection: str = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True)
    )
    provides: tuple = ()
    requires: tuple = ()
    transports: frozenset = frozenset()
    fields: dict = attrs.field(factory=dict)
    configClass: object = None  # attrs class built from the fields
    validate: object = None  # callable(values, path, problems) for cross-field checks

    def parseConfig(self, section, path):
        from mmoshard.config import ConfigError

        problems = []
        values = readTable(section, path, self.fields, problems)
        if self.validate is not None:
            self.validate(values, path, problems)
        if problems:
            raise ConfigError(problems)
        if self.configClass is None:
            return values
        return self.configClass(**values)

    def makeService(self, node):
        return self.factory(node)
