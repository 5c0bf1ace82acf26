"""Release data for the version role's tests, written as real files in a temporary directory."""

import hashlib
import json
import os
import textwrap


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def writeManifest(directory, platform, build, sizes):
    """Write manifests/<platform>/<build>.json with one file per size."""
    folder = os.path.join(directory, "manifests", platform)
    os.makedirs(folder, exist_ok=True)
    files = [
        {"path": f"data/{i}.pak", "size": size, "sha256": sha(f"{platform}{build}{i}")}
        for i, size in enumerate(sizes)
    ]
    with open(os.path.join(folder, build + ".json"), "w") as f:
        json.dump({"files": files}, f)


def patchTOML(platform, source, target, size):
    return textwrap.dedent(
        f"""
        [[patches]]
        from = "{source}"
        to = "{target}"
        path = "patches/{platform}/{source}_{target}.bin"
        size = {size}
        sha256 = "{sha(platform + source + target)}"
        """
    )


def writeReleaseDir(
    directory,
    live='latest = "1.10.0"\nminimum = "1.9.0"',
    maintenance="",
    builds=None,
    patches=None,
):
    """
    Write a small, complete release directory: windows with builds
    1.8.0 .. 1.10.0 (each 1000 bytes in full) and a few patches, linux with
    one build, CDNs in eu and na.

    @return: C{directory}.
    """
    os.makedirs(directory, exist_ok=True)
    builds = builds or {"1.8.0": [600, 400], "1.9.0": [600, 400], "1.9.9": [500, 500], "1.10.0": [700, 300]}
    for build, sizes in builds.items():
        writeManifest(directory, "windows", build, sizes)
    writeManifest(directory, "linux", "1.10.0", [1000])
    if patches is None:
        patches = [
            ("1.8.0", "1.9.0", 300),
            ("1.9.0", "1.9.9", 100),
            ("1.9.9", "1.10.0", 150),
            ("1.9.0", "1.10.0", 400),
        ]
    with open(os.path.join(directory, "windows.toml"), "w") as f:
        f.write("[channels.live]\n" + live + "\n")
        f.write('notes_url = "https://example.com/notes"\n')
        for source, target, size in patches:
            f.write(patchTOML("windows", source, target, size))
    with open(os.path.join(directory, "linux.toml"), "w") as f:
        f.write('[channels.live]\nlatest = "1.10.0"\nminimum = "1.10.0"\n')
    with open(os.path.join(directory, "release.toml"), "w") as f:
        f.write(
            textwrap.dedent(
                """
                [[cdn]]
                region = "eu"
                url = "https://eu-2.example.com/"
                priority = 2
                [[cdn]]
                region = "eu"
                url = "https://eu-1.example.com"
                priority = 1
                [[cdn]]
                region = "na"
                url = "https://na-1.example.com"
                priority = 1
                """
            )
            + maintenance
        )
    return directory


def maintenanceTOML(start, end, message="Back soon"):
    return f'\n[[maintenance]]\nstart = {start}\nend = {end}\nmessage = "{message}"\n'
