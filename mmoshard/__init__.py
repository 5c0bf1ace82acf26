"""mmoshard: an MMORPG shard server on Twisted."""

__version__ = "0.1.0"
