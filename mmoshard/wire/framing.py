"""TCP framing: each message is a 4-byte big-endian length followed by that many bytes."""

import struct

HEADER = struct.Struct(">I")
_unpackHeader = HEADER.unpack_from
_packHeader = HEADER.pack


class FrameTooLarge(ValueError):
    """A frame header announced more than the maximum frame size."""

    def __init__(self, size, limit):
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


class EmptyFrame(ValueError):
    """A frame of length 0, which no message can be."""


def frame(payload):
    """@return: C{payload} with its length prefix."""
    return _packHeader(len(payload)) + payload


class FrameDecoder:
    """
    Splits a byte stream into frames, however the stream was chopped or
    coalesced.  Holds at most one partial frame (bounded by C{maxFrame}).
    """

    __slots__ = ("maxFrame", "_buffer")

    def __init__(self, maxFrame):
        self.maxFrame = maxFrame
        self._buffer = b""

    def feed(self, data):
        """
        @return: the list of complete frames (bytes) now available.
        @raise FrameTooLarge: as soon as a header exceeds C{maxFrame}, before
            its body is buffered.
        @raise EmptyFrame: for a zero-length frame.
        """
        if self._buffer:
            data = self._buffer + data
        end = len(data)
        if end >= 4:
            # The common case, one whole frame per read, without the loop.
            (size,) = _unpackHeader(data, 0)
            if size + 4 == end and 0 < size <= self.maxFrame:
                self._buffer = b""
                return [data[4:]]
        offset = 0
        frames = []
        maxFrame = self.maxFrame
        while end - offset >= 4:
            (size,) = _unpackHeader(data, offset)
            if size > maxFrame:
                raise FrameTooLarge(size, maxFrame)
            if size == 0:
                raise EmptyFrame("empty frame")
            stop = offset + 4 + size
            if stop > end:
                break
            frames.append(data[offset + 4 : stop])
            offset = stop
        self._buffer = data[offset:] if offset < end else b""
        return frames

    @property
    def pending(self):
        """Bytes held for an incomplete frame."""
        return len(self._buffer)
