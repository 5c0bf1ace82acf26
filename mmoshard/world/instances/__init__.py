"""Instances: per-party copies of a zone template with boss encounters, lockouts and rewards written once (docs/instances.md)."""
