"""Tests of the shared web pieces."""
