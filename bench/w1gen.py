"""The C load generator (bench/w1gen.c, W1 and W2 with bench/w2mind.c): built once per source hash, fed a handshake file per step, checked against the Python bots."""

import hashlib
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The bench's token key: the handshakes' tokens are minted with it.
KEY = "w1-bench-token-key-0123456789abcdef"

GEN_SOURCE = os.path.join(ROOT, "bench", "w1gen.c")
# Compiled with it: the W2 fighter's mind (the port of mmoshard/bots/combat.py).
GEN_SOURCES = (GEN_SOURCE, os.path.join(ROOT, "bench", "w2mind.c"))
GEN_HEADERS = (os.path.join(ROOT, "bench", "w2mind.h"),)
HANDSHAKE_MAGIC = b"W1HS0001"
GAME_DATA_MAGIC = "W2DATA1"


def buildGenerator():
    """Compile bench/w1gen.c and w2mind.c (cached by source hash in the temp dir). @return: its path."""
    return buildProgram("w1gen", GEN_SOURCES)


def buildMindCheck():
    """Compile bench/w2mindcheck.c, the W2 mind's script runner (tests). @return: its path."""
    return buildProgram("w2mindcheck", (os.path.join(ROOT, "bench", "w2mindcheck.c"),
                                        os.path.join(ROOT, "bench", "w2mind.c")))


def buildProgram(name, sources):
    """Compile C{sources} (with bench/w2mind.h) into C{name}, cached by their hash. @return: its path."""
    h = hashlib.sha1()
    for path in sources + GEN_HEADERS:
        with open(path, "rb") as f:
            h.update(f.read())
    digest = h.hexdigest()[:16]
    d = os.path.join(tempfile.gettempdir(), f"{name}-{os.getuid()}-{digest}")
    binary = os.path.join(d, name)
    if not (_ours(d) and _ours(binary)):
        # The temp dir is shared: run only what we compiled into a directory
        # of our own, never a binary someone else put at that name.
        if os.path.lexists(d) and not _ours(d):
            d = tempfile.mkdtemp(prefix=f"{name}-{digest}-")
            binary = os.path.join(d, name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        part = f"{binary}.{os.getpid()}"
        out = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", part, *sources, "-lm"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"cannot compile {sources[0]}:\n{out.stderr}")
        os.replace(part, binary)
    return binary


def _ours(path):
    """True when C{path} exists, is not a link, is ours, and only we may write it."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (not stat.S_ISLNK(st.st_mode) and st.st_uid == os.getuid()
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def writeHandshakes(path, n, firstId=1, key=KEY):
    """
    The C generator's handshake file: for bot i (account and character
    firstId + i) the framed hello and world.enter the Python bot sends.
    """
    from mmoshard.tokens import issueAccessToken
    from mmoshard.wire.codec import encode
    from mmoshard.wire.framing import frame

    parts = [HANDSHAKE_MAGIC, n.to_bytes(4, "big"), firstId.to_bytes(4, "big")]
    now = time.time()
    for cid in range(firstId, firstId + n):
        parts.append(frame(encode({
            "t": "hello", "id": 1, "token": issueAccessToken(key, cid, f"bot-{cid}", 86400, now),
            "client_version": "bots-1", "platform": "bots"})))
        parts.append(frame(encode({"t": "world.enter", "id": 2, "character_id": cid})))
    with open(path, "wb") as f:
        f.write(b"".join(parts))


def writeGameData(path, abilitiesFile="etc/abilities.toml", classesFile="etc/classes.toml"):
    """
    The C generator's W2 game data (C{--game-data}): what the Python bots
    read from the same files, as text lines the C program scans:

        W2DATA1
        class <id> <role>
        ability <id> <num> <kind> <target> <range> <radius> <cast> <cooldown> <gcd> <cost> <duration>
    """
    from mmoshard.bots.w2 import classRoles, gameData

    data = gameData(abilitiesFile, classesFile)
    if data is None:
        raise SystemExit(f"cannot read the game data of {abilitiesFile}, {classesFile}")
    lines = [GAME_DATA_MAGIC]
    for cls, role in classRoles(classesFile).items():
        lines.append(f"class {_word(cls)} {_word(role or '-')}")
    for a in data.abilities.values():
        lines.append(" ".join(["ability", _word(a.id), str(a.num), _word(a.kind), _word(a.target)]
                              + [repr(float(v)) for v in (a.range, a.radius, a.cast, a.cooldown,
                                                         a.gcd, a.cost, a.duration)]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _word(s):
    """C{s}, which the C program scans as one word (an id or a name from the game data)."""
    if not s or any(c.isspace() for c in s) or len(s) >= 48:
        raise SystemExit(f"game data name {s!r}: the C generator takes words under 48 bytes")
    return s


def readHandshakes(path):
    """@return: (firstId, [(hello, enter)]) of a handshake file, decoded."""
    from mmoshard.wire.codec import decode
    from mmoshard.wire.framing import FrameDecoder

    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != HANDSHAKE_MAGIC:
        raise ValueError("not a handshake file")
    n, firstId = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    frames = [decode(p) for p in FrameDecoder(1 << 20).feed(data[16:])]
    if len(frames) != 2 * n:
        raise ValueError(f"{len(frames)} frames for {n} bots")
    return firstId, list(zip(frames[0::2], frames[1::2]))


def genSelftest(argv):
    """The C generator against the Python bot: move bytes, handshake file both ways."""
    from mmoshard.bots.w1 import packMove
    from mmoshard.tokens import signingKey

    binary = buildGenerator()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "hs")
        writeHandshakes(path, 50, 7)
        first, pairs = readHandshakes(path)
        assert first == 7 and len(pairs) == 50
        import jwt

        for i, (hello, enter) in enumerate(pairs):
            assert hello["t"] == "hello" and hello["id"] == 1, hello
            claims = jwt.decode(hello["token"], signingKey(KEY), algorithms=["HS256"])
            assert claims["sub"] == str(7 + i), claims
            assert enter == {"t": "world.enter", "id": 2, "character_id": 7 + i}, enter
        out = subprocess.run([binary, "--selftest", "--handshakes", path, "--count", "50",
                              "--first-id", "7"], capture_output=True, text=True, check=True).stdout
    expected = packMove(1.5, -2.25, 3.0, -4.0, 123456789, 7).hex()
    assert f"move {expected}" in out, out
    assert "handshakes 50 ok" in out, out
    for line in selftestFrames():
        assert line in out, (line, out)
    print("gen-selftest ok")
    return 0


def selftestFrames():
    """The lines of C{w1gen --selftest} for W2's messages: the bytes the Python bot sends for them."""
    from mmoshard.bots.combat import NPC_BASE
    from mmoshard.bots.w2 import RELEASE_ID
    from mmoshard.wire.codec import encode
    from mmoshard.wire.framing import frame

    return [
        "cast " + frame(encode({"t": "world.cast", "id": 10, "ability": "fireball",
                                "target": NPC_BASE + 5})).hex(),
        "cast " + frame(encode({"t": "world.cast", "id": 70000, "ability": "fireball",
                                "x": 12.5, "z": -3.25})).hex(),
        "release " + frame(encode({"t": "world.release", "id": RELEASE_ID})).hex(),
    ]
