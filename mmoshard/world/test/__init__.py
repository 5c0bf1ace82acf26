"""Tests for the world role."""
