"""The matchmaking role: party-aware queues with role quotas and ratings, ready checks, instance allocation."""
