"""Tests for the load generators."""
