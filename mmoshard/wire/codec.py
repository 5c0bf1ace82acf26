"""The msgpack codec: one message is a map with str keys, a str C{t} (type) and an optional C{id}."""

import re

import msgpack

# The largest integer a column holds (signed 64-bit: BIGINT in MySQL,
# INTEGER in SQLite); msgpack carries up to 2**64 - 1.
INT64_MAX = (1 << 63) - 1


class DecodeError(ValueError):
    """The bytes are not one well-formed message."""


class OutOfRange(DecodeError):
    """
    A well-formed message holding an integer beyond signed 64 bits: refused
    as a bad request (the connection stays), C{message} its decoded form
    (for its type and id).
    """

    def __init__(self, why, message):
        super().__init__(why)
        self.message = message


def _noExt(code, data):
    # Extension types have no meaning in the protocol; refusing them keeps a
    # handler from ever seeing an ExtType it did not ask for.
    raise DecodeError(f"extension type {code} not allowed")


_packb = msgpack.packb
_unpackb = msgpack.unpackb
_Timestamp = msgpack.Timestamp
# The first bytes of what ext_hook and strict_map_key let through: a bin
# (c4-c6: a bytes map key), a timestamp (ext type -1 in c7, d6, d7: msgpack
# decodes it itself, without ext_hook) and a uint64 (cf: beyond signed 64
# bits from 2**63).  A message without any of these bytes needs no walk;
# one with them (or with them inside a float or a string) is walked once.
_suspect = re.compile(rb"[\xc4-\xc7\xcf\xd6\xd7]").search


def encode(message):
    """@return: the bytes of C{message} (a dict)."""
    return _packb(message, use_bin_type=True)


def _walk(message):
    """Refuse a non-str map key, a timestamp, an integer beyond signed 64 bits."""
    stack = [message]
    pop, push = stack.pop, stack.extend
    big = None
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            for key in value:
                if type(key) is not str:
                    raise DecodeError("map keys must be str")
            push(value.values())
        elif kind is list:
            push(value)
        elif kind is int:
            if value > INT64_MAX:
                big = value
        elif kind is _Timestamp:
            raise DecodeError("extension type -1 not allowed")
    if big is not None:
        raise OutOfRange(f"integer {big} beyond signed 64 bits", message)


def decode(payload):
    """
    @return: the message dict, with a str C{t}.
    @raise DecodeError: for anything else: bad msgpack, trailing bytes, a
        non-map value, a missing or non-str type, an extension type, a map
        key that is not a str.
    @raise OutOfRange: (a L{DecodeError}) for a well-formed message holding
        an integer beyond signed 64 bits.
    """
    try:
        message = _unpackb(payload, raw=False, strict_map_key=True, ext_hook=_noExt)
    except DecodeError:
        raise
    except Exception as e:
        # msgpack raises a zoo of exception types (ValueError, ExtraData,
        # FormatError, StackError, UnicodeDecodeError...) on hostile input.
        raise DecodeError(f"not a msgpack message: {e.__class__.__name__}")
    if type(message) is not dict:
        raise DecodeError("a message must be a map")
    if type(message.get("t")) is not str:
        raise DecodeError("a message needs a str 't' (its type)")
    if _suspect(payload) is not None:
        _walk(message)
    return message
