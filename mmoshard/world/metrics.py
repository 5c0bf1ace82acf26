"""Prometheus metrics of the world role: tick durations and overruns, per-zone counts read at scrape time."""

from collections import defaultdict

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mmoshard.world.instances.ids import parseInstanceZone

TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


def zoneLabel(zoneId):
    """
    @return: the metrics label of zone C{zoneId}: its id, or for an
        instance's zone its template (instances come and go by the hundred:
        one series per template, not per copy).
    """
    parsed = parseInstanceZone(zoneId)
    return zoneId if parsed is None else parsed[0]


def _family(kind, name, doc, labels, values):
    family = kind(name, doc, labels=labels)
    for key, value in values.items():
        family.add_metric(list(key), value)
    return family


class _ZoneCollector:
    """Reads each zone's plain counters at scrape time: nothing on the hot path."""

    def __init__(self, service):
        self.service = service

    def describe(self):
        return []

    def collect(self):
        service = self.service
        sums = defaultdict(lambda: defaultdict(float))
        for zid, zone in service.zones.items():
            key = (zoneLabel(zid),)
            s = zone.stats
            loop = service.loops.get(zid)
            n = len(zone.observers)
            sums["players"][key] += n
            sums["entities"][key] += len(zone.entities)
            sums["pairs"][key] += zone.aoiPairs()
            # Summed per label, divided by its players below.
            sums["bytesPerClient"][key] += service.bytesPerClient.get(zid, 0.0) * n
            sums["inputs"][key] += s.inputs
            sums["corrections"][key] += s.corrections
            sums["dropped"][key] += s.dropped
            sums["updates"][key] += s.updates
            sums["bytesOut"][key] += s.bytesOut
            sums["overruns"][key] += loop.overruns if loop else 0
            sums["skipped"][key] += loop.skipped if loop else 0
        players = sums["players"]
        perClient = {k: v / players[k] if players[k] else 0.0 for k, v in sums["bytesPerClient"].items()}
        zone = ["zone"]
        yield _family(GaugeMetricFamily, "mmoshard_world_players", "Players in the zone", zone, players)
        yield _family(GaugeMetricFamily, "mmoshard_world_entities", "Entities in the zone", zone,
                      sums["entities"])
        yield _family(GaugeMetricFamily, "mmoshard_world_aoi_pairs", "Observer-entity pairs in view",
                      zone, sums["pairs"])
        yield _family(GaugeMetricFamily, "mmoshard_world_bytes_out_per_client",
                      "Update payload bytes per second per player, over the last few seconds",
                      zone, perClient)
        yield _family(CounterMetricFamily, "mmoshard_world_inputs", "Move inputs received", zone,
                      sums["inputs"])
        yield _family(CounterMetricFamily, "mmoshard_world_corrections", "Moves refused and corrected",
                      zone, sums["corrections"])
        yield _family(CounterMetricFamily, "mmoshard_world_stale_inputs",
                      "Inputs sent before a correction arrived", zone, sums["dropped"])
        yield _family(CounterMetricFamily, "mmoshard_world_updates", "world.u messages sent", zone,
                      sums["updates"])
        yield _family(CounterMetricFamily, "mmoshard_world_update_bytes",
                      "Update payload bytes sent (estimate)", zone, sums["bytesOut"])
        yield _family(CounterMetricFamily, "mmoshard_world_tick_overruns",
                      "Ticks longer than the tick interval", zone, sums["overruns"])
        yield _family(CounterMetricFamily, "mmoshard_world_ticks_skipped",
                      "Tick deadlines skipped after a slow tick", zone, sums["skipped"])
        yield from _combatFamilies(service)


def _combatFamilies(service):
    """The zones' combat counters and NPC states, and the node's reward grants."""
    sums = defaultdict(lambda: defaultdict(float))
    for zid, zone in service.zones.items():
        label = zoneLabel(zid)
        combat = zone.combat
        if combat is not None:
            s = combat.stats
            sums["casts"][(label,)] += s.casts
            for code, n in s.refused.items():
                sums["refused"][(label, code)] += n
            for kind, n in s.deaths.items():
                sums["deaths"][(label, kind)] += n
            sums["damage"][(label,)] += s.damage
            sums["healing"][(label,)] += s.healing
        if zone.npcs is not None:
            for state, n in zone.npcs.states().items():
                sums["npcs"][(label, state)] += n
    zone = ["zone"]
    yield _family(CounterMetricFamily, "mmoshard_world_casts", "Players' casts accepted", zone,
                  sums["casts"])
    yield _family(CounterMetricFamily, "mmoshard_world_casts_refused",
                  "Players' casts refused, by error code", ["zone", "code"], dict(sorted(sums["refused"].items())))
    yield _family(CounterMetricFamily, "mmoshard_world_deaths", "Deaths, by kind (p player, n NPC)",
                  ["zone", "kind"], dict(sorted(sums["deaths"].items())))
    yield _family(CounterMetricFamily, "mmoshard_world_damage", "Health taken by damage", zone,
                  sums["damage"])
    yield _family(CounterMetricFamily, "mmoshard_world_healing", "Health restored by heals", zone,
                  sums["healing"])
    yield _family(GaugeMetricFamily, "mmoshard_world_npcs", "NPCs by AI state", ["zone", "state"],
                  dict(sorted(sums["npcs"].items())))
    rewards = CounterMetricFamily(
        "mmoshard_world_rewards", "Kill rewards (exp shares, loot items) by outcome", labels=["result"])
    rewards.add_metric(["granted"], service.rewards.granted)
    rewards.add_metric(["failed"], service.rewards.failed)
    yield rewards
    kills = CounterMetricFamily(
        "mmoshard_world_boss_kills", "Instance boss kills written to SQL, or given up after retries",
        labels=["result"])
    kills.add_metric(["written"], service.kills.written)
    kills.add_metric(["failed"], service.kills.failed)
    yield kills
    writes = CounterMetricFamily(
        "mmoshard_world_reward_writes", "Writes of kill rewards (one transaction for the grants "
        "asked for while the previous write was in flight)")
    writes.add_metric([], service.rewards.queue.writes)
    yield writes


class WorldMetrics:
    """The world's metrics on the node's registry."""

    def __init__(self, registry, service):
        self.tick = Histogram(
            "mmoshard_world_tick_seconds", "Duration of a whole zone tick", ["zone"],
            buckets=TICK_BUCKETS, registry=registry)
        self.saves = Histogram(
            "mmoshard_world_save_batch_size", "Characters per position-save transaction",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000), registry=registry)
        registry.register(_ZoneCollector(service))

    def observer(self, label):
        """@return: the C{observe(duration, overrun)} callback of the loops of the zones of L{zoneLabel} C{label}."""
        child = self.tick.labels(label)
        return lambda duration, overrun: child.observe(duration)
