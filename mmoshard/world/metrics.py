"""Prometheus metrics of the world role: tick durations and overruns, per-zone counts read at scrape time."""

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


class _ZoneCollector:
    """Reads each zone's plain counters at scrape time: nothing on the hot path."""

    def __init__(self, service):
        self.service = service

    def describe(self):
        return []

    def collect(self):
        service = self.service
        players = GaugeMetricFamily("mmoshard_world_players", "Players in the zone", labels=["zone"])
        entities = GaugeMetricFamily("mmoshard_world_entities", "Entities in the zone", labels=["zone"])
        pairs = GaugeMetricFamily(
            "mmoshard_world_aoi_pairs", "Observer-entity pairs in view", labels=["zone"])
        perClient = GaugeMetricFamily(
            "mmoshard_world_bytes_out_per_client",
            "Update payload bytes per second per player, over the last few seconds",
            labels=["zone"])
        inputs = CounterMetricFamily("mmoshard_world_inputs", "Move inputs received", labels=["zone"])
        corrections = CounterMetricFamily(
            "mmoshard_world_corrections", "Moves refused and corrected", labels=["zone"])
        dropped = CounterMetricFamily(
            "mmoshard_world_stale_inputs", "Inputs sent before a correction arrived", labels=["zone"])
        updates = CounterMetricFamily("mmoshard_world_updates", "world.u messages sent", labels=["zone"])
        bytesOut = CounterMetricFamily(
            "mmoshard_world_update_bytes", "Update payload bytes sent (estimate)", labels=["zone"])
        overruns = CounterMetricFamily(
            "mmoshard_world_tick_overruns", "Ticks longer than the tick interval", labels=["zone"])
        skipped = CounterMetricFamily(
            "mmoshard_world_ticks_skipped", "Tick deadlines skipped after a slow tick", labels=["zone"])
        for zid, zone in service.zones.items():
            s = zone.stats
            loop = service.loops.get(zid)
            players.add_metric([zid], len(zone.observers))
            entities.add_metric([zid], len(zone.entities))
            pairs.add_metric([zid], zone.aoiPairs())
            perClient.add_metric([zid], service.bytesPerClient.get(zid, 0.0))
            inputs.add_metric([zid], s.inputs)
            corrections.add_metric([zid], s.corrections)
            dropped.add_metric([zid], s.dropped)
            updates.add_metric([zid], s.updates)
            bytesOut.add_metric([zid], s.bytesOut)
            overruns.add_metric([zid], loop.overruns if loop else 0)
            skipped.add_metric([zid], loop.skipped if loop else 0)
        yield from (players, entities, pairs, perClient, inputs, corrections, dropped,
                    updates, bytesOut, overruns, skipped)
        yield from _combatFamilies(service)


def _combatFamilies(service):
    """The zones' combat counters and NPC states, and the node's reward grants."""
    casts = CounterMetricFamily("mmoshard_world_casts", "Players' casts accepted", labels=["zone"])
    refused = CounterMetricFamily(
        "mmoshard_world_casts_refused", "Players' casts refused, by error code", labels=["zone", "code"])
    deaths = CounterMetricFamily(
        "mmoshard_world_deaths", "Deaths, by kind (p player, n NPC)", labels=["zone", "kind"])
    damage = CounterMetricFamily("mmoshard_world_damage", "Health taken by damage", labels=["zone"])
    healing = CounterMetricFamily("mmoshard_world_healing", "Health restored by heals", labels=["zone"])
    npcs = GaugeMetricFamily("mmoshard_world_npcs", "NPCs by AI state", labels=["zone", "state"])
    for zid, zone in service.zones.items():
        combat = zone.combat
        if combat is not None:
            s = combat.stats
            casts.add_metric([zid], s.casts)
            for code, n in sorted(s.refused.items()):
                refused.add_metric([zid, code], n)
            for kind, n in sorted(s.deaths.items()):
                deaths.add_metric([zid, kind], n)
            damage.add_metric([zid], s.damage)
            healing.add_metric([zid], s.healing)
        if zone.npcs is not None:
            for state, n in sorted(zone.npcs.states().items()):
                npcs.add_metric([zid, state], n)
    rewards = CounterMetricFamily(
        "mmoshard_world_rewards", "Kill rewards (exp shares, loot items) by outcome", labels=["result"])
    r = getattr(service, "rewards", None)
    if r is not None:
        rewards.add_metric(["granted"], r.granted)
        rewards.add_metric(["failed"], r.failed)
    yield from (casts, refused, deaths, damage, healing, npcs, rewards)


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

    def observer(self, zoneId):
        """@return: the C{observe(duration, overrun)} callback of one zone's loop."""
        child = self.tick.labels(zoneId)
        return lambda duration, overrun: child.observe(duration)
