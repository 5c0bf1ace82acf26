"""Tests for the node skeleton: config, plugins, services, directory, admin site, twistd processes."""
