"""The typed errors of instances: world.instance.* requests and IInstances calls (defined in the core's mmoshard.instanceerrors)."""

from mmoshard.instanceerrors import (  # noqa: F401 (re-exported for the world's modules)
    BAD_MATCH, BAD_TICKET, CLOSED, CODES, LOCKED, NO_CAPACITY, NOT_IN_INSTANCE, NOT_LEADER,
    PARTY_FULL, UNAVAILABLE, UNKNOWN_TEMPLATE, InstanceError,
)
