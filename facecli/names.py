"""People's names: one spelling per name, nothing invisible, and no name that looks like another.

Names that print alike must not be different people: ``José`` typed with a
precomposed é (NFC) or with e and a combining accent (NFD) is one name, so
every name is stored and looked up in NFC. Characters that print as nothing
(format and control characters, bidi controls, variation selectors, the
combining grapheme joiner and the other default-ignorable code points) are
refused outright. A new name whose UTS #39 skeleton equals an existing
person's (``alice`` and ``aIice``; Latin and Cyrillic ``а``) is refused too:
it would claim another person's identity at a glance. The skeletons come from
ICU's SpoofChecker (``pyicu-wheels``), the reference implementation of
Unicode's confusable data, imported only when a name is written.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache

from facecli.errors import InputError

#: Default-ignorable code points that are not of a refused category already (Unicode's DerivedCoreProperties):
#: the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian selectors, variation selectors,
#: tags and the reserved default-ignorable planes.
_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
              (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def _invisible(c: str) -> bool:
    code = ord(c)
    return unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or \
        any(lo <= code <= hi for lo, hi in _IGNORABLE)


def name_problem(name: str) -> str | None:
    """Why a name cannot be a person's (empty, padded, holding characters that print as nothing), or None."""
    if not name.strip() or name != name.strip():
        return "a name must be non-empty, without leading or trailing spaces"
    if any(_invisible(c) for c in name):
        return "a name cannot hold control, formatting or invisible characters"
    return None


def as_stored(name: str) -> str:
    """How a name is stored, and so looked up: in NFC."""
    return unicodedata.normalize("NFC", name)


def person_name(name: str) -> str:
    """A name as it is stored and looked up: NFC, checked (``name_problem``); else an InputError naming it."""
    name = as_stored(name)
    problem = name_problem(name)
    if problem is not None:
        raise InputError(ascii(name), problem)
    return name


@cache
def _checker():  # noqa: ANN202 (icu's type)
    # ICU (pyicu-wheels): loaded only when a name is written or checked
    import icu

    return icu.SpoofChecker()


@lru_cache(maxsize=1 << 18)
def skeleton(name: str) -> str:
    """The UTS #39 skeleton of a name: two names look alike exactly when their skeletons are equal."""
    return _checker().getSkeleton(0, name)


def look_alike(name: str, others: Iterable[str]) -> str | None:
    """An existing name that looks like ``name`` without being it, or None."""
    mine = skeleton(name)
    return next((other for other in others if other != name and skeleton(other) == mine), None)
