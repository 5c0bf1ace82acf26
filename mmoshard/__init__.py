"""mmoshard: an MMORPG server on Twisted."""

__version__ = "0.1.0"
