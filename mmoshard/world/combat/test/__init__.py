"""Tests of the world combat: game data, rules, threat, NPCs and rewards."""
