"""The M1 bench's count of Redis requests: a sitecustomize for the server processes that wraps RedisStore._send and evalScript, and its reader."""

# Written as sitecustomize.py into a directory first on the server's
# PYTHONPATH (OUTDIR replaced by the bench's temp dir, quoted).  When
# mmoshard.store.redis is imported, RedisStore._send (every command the
# pool sends: one request, one reply) and evalScript (by script name) are
# wrapped to count; a daemon thread writes the counts to
# OUTDIR/rt-<pid>.txt every 0.2 s.  Nothing else of the server changes.
HOOK = '''
import importlib.abc
import importlib.util
import os
import sys
import threading
import time

_OUT = os.path.join(OUTDIR, "rt-%d.txt" % os.getpid())
_COUNTS = {"rt": 0}
_SCRIPTS = {}


def _patch(module):
    store = module.RedisStore
    send, evalScript = store._send, store.evalScript

    def _send(self, *args):
        _COUNTS["rt"] += 1
        return send(self, *args)

    def _evalScript(self, script, keys, args):
        _SCRIPTS[script.name] = _SCRIPTS.get(script.name, 0) + 1
        return evalScript(self, script, keys, args)

    store._send, store.evalScript = _send, _evalScript

    def write():
        while True:
            time.sleep(0.2)
            line = " ".join(["rt=%d" % _COUNTS["rt"]] + ["%s=%d" % kv for kv in list(_SCRIPTS.items())])
            with open(_OUT + ".new", "w") as f:
                f.write(line)
            os.replace(_OUT + ".new", _OUT)

    threading.Thread(target=write, daemon=True).start()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "mmoshard.store.redis":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


def readCounts(path):
    """@return: {"rt": requests, "scripts": {name: calls}} from a count file (zeros when absent)."""
    out = {"rt": 0, "scripts": {}}
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return out
    for word in words:
        key, _, value = word.partition("=")
        if key == "rt":
            out["rt"] = int(value)
        elif key:
            out["scripts"][key] = int(value)
    return out
