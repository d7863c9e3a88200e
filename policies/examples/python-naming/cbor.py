"""A reader for the canonical CBOR (RFC 8949) the host sends as an op's
arguments (`intent.payload_cbor`): maps with text keys, arrays, text, byte
strings, integers, floats (half, single, double), booleans and null. That is
everything the host encodes; indefinite lengths and tags are refused, as the
canonical form never uses them.

Decoding the payload gives the arguments as plain Python values, e.g.
``{"id": "obj-1", "name": "SM_Crate", "kind": "mesh"}``.
"""

import struct


class CborError(ValueError):
    pass


def decode(data: bytes):
    """The one CBOR item `data` holds."""
    value, end = _item(memoryview(bytes(data)), 0)
    if end != len(data):
        raise CborError(f"{len(data) - end} trailing bytes after the item")
    return value


def _item(b, i):
    if i >= len(b):
        raise CborError("truncated")
    major, info = b[i] >> 5, b[i] & 31
    i += 1
    if major == 7:
        if info == 20:
            return False, i
        if info == 21:
            return True, i
        if info in (22, 23):
            return None, i
        for code, fmt, size in ((25, ">e", 2), (26, ">f", 4), (27, ">d", 8)):
            if info == code:
                return struct.unpack_from(fmt, b, i)[0], i + size
        raise CborError(f"unsupported simple value {info}")
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    else:
        raise CborError("indefinite lengths are not canonical")
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        if i + n > len(b):
            raise CborError("truncated string")
        raw = bytes(b[i:i + n])
        return (raw if major == 2 else raw.decode("utf-8")), i + n
    if major == 4:
        out = []
        for _ in range(n):
            v, i = _item(b, i)
            out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _item(b, i)
            v, i = _item(b, i)
            out[k] = v
        return out, i
    raise CborError("tags are not used by the host")
