"""Tests of instances: templates, hosting, entering and leaving, encounters, kills."""
