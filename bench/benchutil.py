"""Helpers every benchmark driver shares: free ports, a process's CPU time, the local stores' CPU time."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmoshard.testing import freePort  # noqa: E402

__all__ = ["freePort", "cpuSeconds", "StoreCPU"]

# The local store servers whose CPU a step counts as part of its workload.
STORES = {"db": ("mariadbd", "mysqld"), "redis": ("redis-server",)}


def cpuSeconds(pid):
    """User + system CPU seconds used so far by process C{pid} (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pidsNamed(names):
    """@return: the pids of the processes whose command name is one of C{names}."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class StoreCPU:
    """
    The CPU the local MariaDB/MySQL and Redis servers use over a window:
    C{start()} at its beginning, C{cores(window)} at its end -> C{{"db_cpu":
    ..., "redis_cpu": ...}} in cores (a store not running here is left out;
    a server process gone during the window is not counted).  They serve the
    workload (the world's saves and rewards), so a step counts them apart
    from "other processes" (bench/w1.py othersCPU).
    """

    def __init__(self):
        self.pids = {kind: pidsNamed(names) for kind, names in STORES.items()}
        self.t0 = {}

    @staticmethod
    def seconds(pid):
        try:
            return cpuSeconds(pid)
        except OSError:
            return None

    def start(self):
        self.t0 = {kind: {pid: self.seconds(pid) for pid in pids}
                   for kind, pids in self.pids.items() if pids}

    def cores(self, window):
        out = {}
        for kind, t0 in self.t0.items():
            used = 0.0
            for pid, before in t0.items():
                after = self.seconds(pid)
                if before is not None and after is not None and after >= before:
                    used += after - before
            out[f"{kind}_cpu"] = round(used / window, 3)
        return out
