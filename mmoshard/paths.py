"""Where shipped game and release data (etc/...) is found, and reading its TOML files."""

import os
import sys
import tomllib


def shippedRoot():
    """
    The directory holding the shipped C{etc/} and C{sql/}: the checkout when
    running from one (or an editable install), else C{<prefix>/share/mmoshard}.
    """
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(os.path.join(checkout, "etc")):
        return checkout
    return os.path.join(sys.prefix, "share", "mmoshard")


def dataPath(path):
    """
    Resolve a data path from config: absolute paths and paths that exist
    relative to the working directory are used as they are; other relative
    paths fall back to the shipped copy, so the defaults work from any
    directory.
    """
    if os.path.isabs(path) or os.path.exists(path):
        return path
    shipped = os.path.join(shippedRoot(), path)
    return shipped if os.path.exists(shipped) else path


def readDataTOML(path, error):
    """
    Read the TOML data file C{path} (resolved with L{dataPath}).

    @param error: the exception class to raise, with a message naming
        C{path}, when it cannot be read or is not valid TOML.
    @return: the parsed document.
    """
    try:
        with open(dataPath(path), "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}")
