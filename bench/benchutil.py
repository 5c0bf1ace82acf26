"""Helpers every benchmark driver shares: free ports and a process's CPU time."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmoshard.testing import freePort  # noqa: E402

__all__ = ["freePort", "cpuSeconds"]


def cpuSeconds(pid):
    """User + system CPU seconds used so far by process C{pid} (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
