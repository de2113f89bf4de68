"""Salesforce record ids: 15-character case-sensitive ids plus the 3-character case-folding checksum.

The checksum is the documented one: for each 5-character chunk, a bit per upper-case letter, mapped onto
``A-Z0-5`` (Salesforce Help, "What are Salesforce IDs composed of?"). Counters are scrambled so that ids do
not sort in creation order, as real ones need not.
"""

from __future__ import annotations

import re
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX = string.ascii_uppercase + "012345"
_SPACE = 62**9
_SCRAMBLE = 2654435761  # odd and prime to 31, so multiplication is a bijection modulo 62**9
_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-5]{3})?$")

KEY_PREFIXES = {
    "Opportunity": "006",
    "Task": "00T",
    "User": "005",
    "Organization": "00D",
    "OpportunityFieldHistory": "017",
    "OpportunityHistory": "008",
}


_PAIRS = [a + b for a in _BASE62 for b in _BASE62]


def _base62(value: int, width: int) -> str:
    out = ""
    while len(out) < width:
        value, rest = divmod(value, 3844)
        out = _PAIRS[rest] + out
    return out[-width:]


def checksum(id15: str) -> str:
    out = ""
    for start in (0, 5, 10):
        bits = 0
        for offset in range(5):
            if "A" <= id15[start + offset] <= "Z":
                bits |= 1 << offset
        out += _SUFFIX[bits]
    return out


def make_id(prefix: str, counter: int) -> str:
    """The 18-character id number ``counter`` for an object whose key prefix is ``prefix``."""
    id15 = prefix + "5g0" + _base62((counter * _SCRAMBLE) % _SPACE, 9)
    return id15 + checksum(id15)


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not id-shaped."""
    if not _ID.match(value):
        return None
    if len(value) == 15:
        return value + checksum(value)
    return value[:15] + checksum(value[:15])
