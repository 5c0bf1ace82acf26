"""Redis Cluster key placement: CRC16 (XMODEM) of a key's hash tag, modulo 16384 slots."""

__all__ = ["SLOTS", "hashTag", "keySlot", "tagged"]

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
