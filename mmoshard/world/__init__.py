"""The world role: zones, authoritative movement, area of interest, persistence and zone transfer."""
