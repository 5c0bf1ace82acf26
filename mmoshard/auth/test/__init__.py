"""Tests of the auth role."""
