"""Bounds on a vendor's JSON before it is parsed: how deep it may nest.

Python's ``json`` module parses nested arrays and objects by recursion: a page nested 10,000 levels
deep (``[[[[…``) ends in a ``RecursionError`` out of ``json.loads``, and one a few hundred levels deep
parses but then breaks the recursive walkers that come after it (``scrub_record``, the surrogate
check). So the raw bytes are measured first, without recursion and at C speed (``bytes.translate``
and ``bytes.replace``, no per-byte Python loop):

1. a page with fewer brackets than the bound cannot nest past it (nearly every page: done);
2. escaped backslashes and escaped quotes are dropped, then every byte but ``[]{}"``: what is left is
   brackets and the quotes of string literals, and a bracket between two quotes is inside a string;
3. adjacent quotes are dropped (an empty string, or the gap between two strings: either way the
   quotes still alternate open/close), then the few strings that still hold brackets are blanked;
4. ``{}`` become ``[]`` and the innermost pairs are peeled off, one level per round, at most
   ``limit`` rounds: whatever is left after that is nested deeper than the bound.

A text that is not balanced JSON gets ``False`` unless its unmatched brackets alone go past the
bound (``[[[[…`` without an end would still recurse); ``json.loads`` refuses the rest.
Figures (2 shared cores): a 17 MiB page of 250,000 ordinary records, 0.25 s (``json.loads`` of the
same page: 1.5 s); a hostile 12 MiB page of 100,000 nests 64 deep, 1.8 s. The size is bounded where
the body is read (``providers._http.MAX_JSON_BYTES``).
"""

from __future__ import annotations

import re

__all__ = ["MAX_JSON_DEPTH", "json_depth_exceeds"]

#: the deepest nesting of arrays/objects a vendor page may have (vendor pages nest fewer than 10)
MAX_JSON_DEPTH = 64

_STRUCTURE = b'[]{}"'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``raw`` (a JSON text) nests arrays/objects deeper than ``limit`` levels."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    shape = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        shape = _STRING.sub(b"", shape)
    shape = shape.translate(_CURLY_TO_SQUARE)
    for _ in range(limit + 1):
        if not shape:
            return False
        peeled = shape.replace(b"[]", b"")
        if peeled == shape:  # unbalanced: json.loads refuses it, unless it would recurse first
            return len(shape) > limit
        shape = peeled
    return True
