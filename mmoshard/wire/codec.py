"""The msgpack codec: one message is a map with str keys, a str C{t} (type) and an optional C{id}."""

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
# What strict_map_key and max_ext_len (every ext, the timestamp too, which
# msgpack decodes without ext_hook) let through that the protocol refuses
# starts with one of these bytes: a bin (c4-c6: perhaps a bytes map key) or
# a uint64 (cf: perhaps 2**63 or more).  Most messages hold none (one pass
# in C, cheaper than a regular expression or four finds) and need no look at
# their values; the others (a float's or a string's bytes may match) are
# looked at.
_SUSPECT = b"\xc4\xc5\xc6\xcf"
# str.join takes str keys only: the keys checked in C.
_joinKeys = "".join


def encode(message):
    """@return: the bytes of C{message} (a dict)."""
    return _packb(message, use_bin_type=True)


def _check(message):
    """Refuse a non-str map key, an integer beyond signed 64 bits."""
    stack = [message]
    pop, push = stack.pop, stack.append
    big = None
    while stack:
        value = pop()
        if type(value) is dict:
            try:
                _joinKeys(value)
            except TypeError:
                raise DecodeError("map keys must be str")
            value = value.values()
        for item in value:
            kind = type(item)
            if kind is int:
                if item > INT64_MAX:
                    big = item
            elif kind is dict or kind is list:
                push(item)
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
        message = _unpackb(payload, raw=False, strict_map_key=True, ext_hook=_noExt,
                           max_ext_len=0)
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
    if len(payload.translate(None, _SUSPECT)) != len(payload):
        _check(message)
    return message
