"""Tests of the version role."""
