"""Combat in the world: game data, combatants, abilities, threat, NPC AI and rewards (docs/combat.md)."""
