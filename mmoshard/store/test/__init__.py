"""Tests for the SQL and volatile stores."""
