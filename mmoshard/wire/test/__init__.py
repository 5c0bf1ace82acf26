"""Tests for the session protocol and access tokens."""
