"""twistd plugin: `twistd -n mmoshard [--config PATH] [--roles a,b] [--shard-id ID]`."""

from twisted.application.service import ServiceMaker

mmoshard = ServiceMaker(
    "mmoshard",
    "mmoshard.tap",
    "MMORPG shard server: auth, version, matchmaking, world and chat roles",
    "mmoshard",
)
