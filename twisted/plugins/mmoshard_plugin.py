"""twistd plugin: `twistd -n mmoshard [--config PATH] [--roles a,b] [--node-id ID]`."""

from twisted.application.service import ServiceMaker

mmoshard = ServiceMaker(
    "mmoshard",
    "mmoshard.tap",
    "MMORPG server: auth, version, world and chat roles",
    "mmoshard",
)
