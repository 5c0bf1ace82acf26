"""Packaging for mmoshard: the package, the twistd plugin and the `mmoshard` command."""

import os
from glob import glob

from setuptools import Extension, find_packages, setup

setup(
    name="mmoshard",
    version="0.1.0",
    description="MMORPG server on Twisted",
    python_requires=">=3.11",
    packages=find_packages(include=["mmoshard", "mmoshard.*"]) + ["twisted.plugins"],
    # Every package where its name says, under the checkout: with this
    # spelled out, setuptools makes `pip install -e .` put the checkout on
    # sys.path (a .pth file) rather than install an import hook that knows
    # only the package names.  Twisted finds plugins by scanning sys.path
    # for twisted/plugins/, so only the former lets `twistd mmoshard` find
    # twisted/plugins/mmoshard_plugin.py (mmoshard/test/test_install.py).
    package_dir={"": "."},
    # twisted/plugins has no __init__.py on purpose: Twisted merges every
    # twisted/plugins directory on sys.path into its plugin package.
    # The static files of the web sites (mmoshard/web/static/: lib/, play/,
    # console/) ship inside the package: the sites serve them from there.
    package_data={"twisted.plugins": ["mmoshard_plugin.py"],
                  "mmoshard.web": ["static/*/*", "static/*/*/*"],
                  "mmoshard.web.test": ["play/*.mjs"]},
    install_requires=[
        # mmoshard/twistedcompat.py reads a few Twisted internals; its test
        # (mmoshard/test/test_twistedcompat.py) passed on the installed
        # Twisted, 26.10.0, and on no other release yet: widen this only
        # after that test passes on the new bounds.
        "twisted[tls]>=26.10,<27",
        "autobahn>=24.4",
        "txredisapi>=1.4.10",
        "hiredis>=2.0",
        "pymysql>=1.1",
        "attrs>=23.1",
        "zope.interface>=6.0",
        "msgpack>=1.0",
        "prometheus-client>=0.20",
        "argon2-cffi>=23.1",
        "cryptography>=42",
        "treq>=23.11",
    ],
    extras_require={
        # pyjwt: the reference the tests check our JWTs against; schemathesis:
        # CI's run against a real node's /openapi.json (.ci/schemathesis).
        # selenium: the browser tests (mmoshard/web/test/browser.py), driving
        # Debian's chromium and chromedriver; nothing downloads a browser.
        "test": ["hypothesis>=6.100", "pyjwt>=2.8", "schemathesis>=4.0", "selenium>=4.20"],
    },
    # Migrations live in sql/ at the top of the checkout; a regular install
    # carries them to <prefix>/share/mmoshard/sql (see store/migrations.py).
    # Game and release data in etc/ go the same way (see mmoshard/paths.py).
    data_files=[
        ("share/mmoshard/sql", glob("sql/*.sql") + ["sql/README.md"]),
        ("share/mmoshard/sql/mysql", glob("sql/mysql/*.sql")),
        ("share/mmoshard/sql/sqlite", glob("sql/sqlite/*.sql")),
    ]
    + sorted(
        (os.path.join("share/mmoshard", folder), [os.path.join(folder, f) for f in files])
        for folder, _, files in os.walk("etc")
        if files
    ),
    # The C interest space and movement checks (mmoshard/world/_space.c,
    # _moves.c): optional, so a machine
    # without a C compiler still installs and runs the pure-Python ones.
    ext_modules=[
        Extension(
            f"mmoshard.world.{name}",
            [f"mmoshard/world/{name}.c"],
            depends=["mmoshard/world/_native.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
            optional=True,
        )
        for name in ("_space", "_moves")
    ],
    entry_points={"console_scripts": ["mmoshard = mmoshard.cli:main"]},
)
