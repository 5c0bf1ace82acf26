"""A deterministic W1 tick harness: one in-process world on a Clock, N simulated TCP players, the real read, tick and write paths but no sockets.

    python bench/tick.py --players 4000 --ticks 100
    TICK_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \\
        $(python -c 'import sys; print(sys.executable)') bench/tick.py --players 2000 --ticks 10

(valgrind wants the interpreter binary itself, not a pyenv shim.)

The world is the test harness (mmoshard.world.test.harness: the real session
manager, memory store, synchronous SQLite); players are StringTransport peers
fed framed world.move bytes through the TCP protocol's dataReceived, in the
W1 layout (a square zone of side sqrt(N*pi*R^2/25), 5 m/s walkers, 5 Hz
moves), seeded.  It reports CPU time per tick and per client-tick for the
whole cycle (reads, tick, writes handed to transports) and for each system.
Timings are for A/B comparisons on one machine; instruction counts under
callgrind (TICK_CALLGRIND=1: the measured ticks only) are repeatable.
"""

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

SPEED = 5.0


class _Case:
    """The bit of a TestCase the harness uses."""

    def successResultOf(self, d):
        out = []
        d.addBoth(out.append)
        if not out:
            raise RuntimeError("Deferred did not fire")
        if hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]


def build(n, seed, aoiInterval, engine="auto"):
    from mmoshard.world.test.harness import WorldHarness
    from mmoshard.wire.test.helpers import TCPPeer, token

    from w1 import side, writeZones

    size = side(n)
    with tempfile.TemporaryDirectory(prefix="tick-") as tmp:
        zones = os.path.join(tmp, "zones.toml")
        writeZones(zones, n, aoiInterval)
        # The zones file is read here, at start.
        world = WorldHarness(_Case(), zones_file=zones, instances_file="", start_zone="w1",
                             max_players=100000, interest=engine)
    rng = random.Random(seed)
    players = []
    for i in range(n):
        account = 1000 + i
        x, z = rng.uniform(0, size), rng.uniform(0, size)
        cid = world.sql.makeCharacter(account, f"p{i}", "w1", x, 0.0, z)
        peer = TCPPeer(world, "10.0.%d.%d" % (i // 250 % 250, i % 250 + 1))
        peer.send({"t": "hello", "id": 1, "token": token(world.clock, account, ttl=1e9),
                   "client_version": "1.0", "platform": "bench"})
        peer.send({"t": "world.enter", "id": 2, "character_id": cid})
        peer.transport.clear()
        h = rng.uniform(0, 2 * math.pi)
        players.append([peer, x, z, SPEED * math.cos(h), SPEED * math.sin(h), size])
    return world, players


def run(opts):
    import gc

    from mmoshard.bots.w1 import packMove
    from mmoshard.config import NODE_FIELDS

    # The collector as twistd runs it (mmoshard.tap): its pauses land in
    # whatever allocates, so the default thresholds would mislead.
    gc.set_threshold(*NODE_FIELDS["gc_threshold"].default)
    world, players = build(opts.players, opts.seed, opts.aoi_interval, opts.engine)
    gc.freeze()
    zone = world.world.zones["w1"]
    timers = {}
    for i, (order, name, func) in enumerate(zone.systems):
        def timed(now, dt, func=func, name=name):
            t0 = time.process_time()
            func(now, dt)
            timers[name] = timers.get(name, 0.0) + time.process_time() - t0
        zone.systems[i] = (order, name, timed)
    rng = random.Random(opts.seed + 1)
    half = 0

    def cycle():
        # Half the players move each tick: 5 Hz moves at a 10 Hz tick.
        nonlocal half
        half ^= 1
        ct = int(world.clock.seconds() * 1000) & 0xFFFFFFFF
        for p in players[half::2]:
            peer, x, z, vx, vz, size = p
            x += vx * 0.2
            z += vz * 0.2
            if not 0.0 <= x <= size:
                vx = -vx
                x = min(max(x, 0.0), size)
            if not 0.0 <= z <= size:
                vz = -vz
                z = min(max(z, 0.0), size)
            if rng.random() < 0.06:
                h = rng.uniform(0, 2 * math.pi)
                vx, vz = SPEED * math.cos(h), SPEED * math.sin(h)
            p[1], p[2], p[3], p[4] = x, z, vx, vz
            # k = 0: valid walks draw no corrections.
            peer.protocol.dataReceived(packMove(x, z, vx, vz, ct, 0))
        world.advance(0.1)
        for p in players:
            p[0].transport.clear()

    for _ in range(opts.warmup):
        cycle()
    timers.clear()
    t0 = time.process_time()
    measured(cycle, opts.ticks)
    spent = time.process_time() - t0
    n = opts.players
    print(f"players={n} engine={'native' if zone.space.native else 'python'} ticks={opts.ticks} cycle_ms={spent / opts.ticks * 1000:.2f} "
          f"us_per_client_tick={spent / opts.ticks / n * 1e6:.2f} "
          + " ".join(f"{k}_us={v / opts.ticks / n * 1e6:.2f}" for k, v in timers.items())
          + f" aoi_pairs={zone.aoiPairs()} corrections={zone.stats.corrections}")


def measured(cycle, ticks):
    # Under callgrind --instr-atstart=no, count only this window.
    toggle = os.environ.get("TICK_CALLGRIND") and (
        lambda on: subprocess.run(["callgrind_control", "-i", on, str(os.getpid())],
                                  check=True, capture_output=True))
    if toggle:
        toggle("on")
    for _ in range(ticks):
        cycle()
    if toggle:
        toggle("off")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--players", type=int, default=4000)
    p.add_argument("--ticks", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--aoi-interval", type=int, default=4)
    p.add_argument("--engine", choices=["auto", "native", "python"], default="auto",
                   help="[world] interest: the C or the Python world engine")
    run(p.parse_args())


if __name__ == "__main__":
    main()
