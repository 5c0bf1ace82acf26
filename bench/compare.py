"""Run one benchmark against two commits in one invocation, alternating them, so a noisy host hits both alike.

    python3 bench/compare.py --before a5aa17e [--after HEAD] [--rounds 2] -- w1.py --only world --counts 4000

Each commit is checked out in a temporary git worktree (its C extensions
built in place), and `python3 <worktree>/bench/<script> <args>` runs there:
the benchmark drives the server code of its own tree.  Runs alternate
before, after, before, after...; every output line of a run is printed
prefixed with its label, then a summary of the `key=value` figures the runs
printed, side by side.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIGURE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9][0-9.,]*)")


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def checkout(ref, base):
    """@return: a worktree of C{ref} under C{base}, its C extensions built in place."""
    commit = git("rev-parse", "--short", ref)
    path = os.path.join(base, commit)
    git("worktree", "add", "--detach", path, commit)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=path,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return commit, path


def run(label, path, script, args):
    """Run the benchmark once in C{path}; @return: its output lines."""
    cmd = [sys.executable, os.path.join(path, "bench", script), *args]
    print(f"[{label}] $ {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=path, capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    for line in lines:
        print(f"[{label}] {line}", flush=True)
    print(f"[{label}] exit {proc.returncode} after {time.monotonic() - t0:.0f}s", flush=True)
    return lines


def figures(lines):
    """@return: key -> last numeric value printed as key=value."""
    found = {}
    for line in lines:
        for key, value in FIGURE.findall(line):
            try:
                found[key] = float(value.replace(",", ""))
            except ValueError:
                pass
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the older commit")
    parser.add_argument("--after", default="HEAD", help="the newer commit (default HEAD)")
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs to run")
    parser.add_argument("bench", nargs=argparse.REMAINDER,
                        help="-- SCRIPT [ARGS...]: a script of bench/ and its arguments")
    args = parser.parse_args(argv)
    bench = args.bench[1:] if args.bench[:1] == ["--"] else args.bench
    if not bench:
        parser.error("name the benchmark: -- w1.py --only world ...")
    script, benchArgs = bench[0], bench[1:]
    base = tempfile.mkdtemp(prefix="mmoshard-compare-")
    trees = []
    try:
        for ref in (args.before, args.after):
            trees.append(checkout(ref, base))
        results = {commit: [] for commit, _ in trees}
        for n in range(args.rounds):
            for commit, path in trees:
                label = f"{commit} #{n + 1}"
                results[commit].append(figures(run(label, path, script, benchArgs)))
        print(f"\n== {script} {' '.join(benchArgs)}: before {trees[0][0]}, after {trees[1][0]}")
        keys = sorted(set().union(*(f for runs in results.values() for f in runs)))
        for key in keys:
            cells = []
            for commit, _ in trees:
                values = [f[key] for f in results[commit] if key in f]
                cells.append("/".join(f"{v:g}" for v in values) or "-")
            print(f"{key:32} {cells[0]:>24} {cells[1]:>24}")
    finally:
        for _, path in trees:
            subprocess.run(["git", "worktree", "remove", "--force", path], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
