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

    roles = {}
    for role in getPlugins(IRole, mmoshard.plugins):
        if role.name in roles and roles[role.name] is not role:
            raise ValueError(f"two plugins provide the role {role.name!r}")
        roles[role.name] = role
    return sorted(roles.values(), key=lambda r: r.name)
