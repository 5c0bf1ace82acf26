"""The version role: version check, patch plans, signed manifests, staged rollout and maintenance."""
