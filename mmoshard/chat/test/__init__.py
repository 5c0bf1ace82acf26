"""Tests of the chat role."""
