"""Redis Cluster key placement: CRC16 (XMODEM) of a key's hash tag, modulo 16384 slots."""

from twisted.internet.defer import DeferredList

__all__ = ["SLOTS", "everyBatch", "hashTag", "keySlot", "slotBatches", "splitBySlot", "tagged"]

SLOTS = 16384


def _table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _table()


def hashTag(key):
    """
    The part of C{key} (bytes) Redis Cluster hashes: what lies between the
    first C{{} and the first C{}} after it when that is not empty, else
    the whole key.
    """
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def keySlot(key):
    """The cluster slot (0..16383) of C{key} (bytes or str), as C{CLUSTER KEYSLOT} gives it."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogateescape")
    crc = 0
    for byte in hashTag(key):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc % SLOTS


def tagged(tag):
    """
    C{{tag}}: put it in a key name and every key with the same tag lands
    in one slot, so one script may touch them all.
    """
    return "{" + str(tag) + "}"


def splitBySlot(volatile, items, keyOf):
    """
    Split C{items} into the batches one script call may take on C{volatile}
    (L{IVolatileStore.groupBySlot}): one batch on a single Redis or the
    memory store, one per hash slot on a Redis Cluster.  C{keyOf(item)} is
    the item's key; items keep their order within a batch (so two items of
    one key stay in order).

    @return: a list of non-empty lists of items.
    """
    items = list(items)
    keys = [keyOf(item) for item in items]
    index = {}
    for n, group in enumerate(volatile.groupBySlot(list(dict.fromkeys(keys)))):
        for key in group:
            index[key] = n
    batches = {}
    for item, key in zip(items, keys):
        batches.setdefault(index[key], []).append(item)
    return [batches[n] for n in sorted(batches)]


def slotBatches(volatile, items, keyOf, size):
    """
    L{splitBySlot}, each batch cut to at most C{size} items: the script
    calls a batching caller makes (the same as before on a single Redis).
    """
    return [batch[start:start + size]
            for batch in splitBySlot(volatile, items, keyOf)
            for start in range(0, len(batch), size)]


async def everyBatch(batches, call):
    """
    Send C{call(batch)} (a Deferred) for every batch at once, not one round
    trip after another: on a Redis Cluster a node's thousands of keys lie in
    as many slots.

    @return: the replies, in batch order.
    @raise Exception: the first batch's failure, once every call answered.
    """
    results = await DeferredList([call(batch) for batch in batches], consumeErrors=True)
    for ok, value in results:
        if not ok:
            value.raiseException()
    return [value for _, value in results]
