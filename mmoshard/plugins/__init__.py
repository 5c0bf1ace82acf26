"""Role plugins: every module here (or in any mmoshard/plugins/ dir on sys.path) may define IRole providers."""

from twisted.plugin import getPlugins, pluginPackagePaths

from mmoshard.interfaces import IRole

# Third-party packages add roles by shipping mmoshard/plugins/<name>.py
# (without an __init__.py) anywhere on sys.path.
__path__.extend(pluginPackagePaths(__name__))
__all__ = []


def discoverRoles():
    """
    @return: every installed L{IRole} plugin, sorted by name.
    @raise ValueError: when two plugins claim the same role name.
    """
    import mmoshard.plugins

    # A package put on sys.path after start-up (a test, a plugin installed
    # into a running interpreter) is found too.
    for path in pluginPackagePaths(__name__):
        if path not in __path__:
            __path__.append(path)
    roles = {}
    for role in getPlugins(IRole, mmoshard.plugins):
        if role.name in roles and roles[role.name] is not role:
            raise ValueError(f"two plugins provide the role {role.name!r}")
        roles[role.name] = role
    return sorted(roles.values(), key=lambda r: r.name)
