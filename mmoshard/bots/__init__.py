"""Load generators speaking the real session protocol: `python -m mmoshard.bots w1 ...` (or `w2`)."""
