"""Tests for the shard skeleton: config, plugins, services, directory, admin site, twistd processes."""
