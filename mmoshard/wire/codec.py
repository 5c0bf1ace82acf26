"""The msgpack codec: one message is a map with a str C{t} (type) and an optional C{id}."""

import msgpack


class DecodeError(ValueError):
    """The bytes are not one well-formed message."""


def _noExt(code, data):
    # Extension types have no meaning in the protocol; refusing them keeps a
    # handler from ever seeing an ExtType it did not ask for.
    raise DecodeError(f"extension type {code} not allowed")


_packb = msgpack.packb
_unpackb = msgpack.unpackb


def encode(message):
    """@return: the bytes of C{message} (a dict)."""
    return _packb(message, use_bin_type=True)


def decode(payload):
    """
    @return: the message dict, with a str C{t}.
    @raise DecodeError: for anything else: bad msgpack, trailing bytes, a
        non-map value, a missing or non-str type.
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
    return message
