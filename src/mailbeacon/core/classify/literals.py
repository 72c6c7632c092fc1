"""Find which of many lower-case literals occur in a string, in one regex search per hit.

CPython's ``re`` tries every alternative of ``a|b|c...`` at every position, so
1,500 joined patterns cost about 1.5 ms per user agent. Shaped as a trie
(``go(?:oglebot|-http-client)``), the same alternation costs a few µs: at each
position only the branch of the next character is tried. A search returns the
longest literal starting at the leftmost position; every shorter literal that
starts there is one of its prefixes, so ``_prefixes`` lists them too, and the
next search starts one character later. Nothing is missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

__all__ = ["LiteralIndex"]

_Trie = dict[str, "_Trie"]
_END = ""  # the key that marks "a literal ends here"; no real edge is empty


class LiteralIndex:
    """The set of literals (lower case) found in a text, each reported once per position."""

    __slots__ = ("_prefixes", "_regex")

    def __init__(self, literals: Iterable[str]) -> None:
        words = {w.lower() for w in literals if w}
        self._regex = re.compile(_trie_pattern(sorted(words))) if words else None
        self._prefixes = {w: tuple(p for p in _leading(w) if p in words) for w in words}

    def find(self, text: str) -> Iterator[str]:
        """Every literal that occurs in ``text`` (already lower-cased by the caller)."""
        regex, pos = self._regex, 0
        while regex is not None and (match := regex.search(text, pos)):
            yield from self._prefixes[match.group()]
            pos = match.start() + 1


def _leading(word: str) -> Iterator[str]:
    return (word[:n] for n in range(1, len(word) + 1))


def _trie_pattern(words: list[str]) -> str:
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[_END] = {}
    return _node_pattern(root)


def _node_pattern(node: _Trie) -> str:
    branches = [re.escape(ch) + _node_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Greedy optional tail: at a position the longest literal wins, its prefixes come with it.
    return f"(?:{body})?" if _END in node else body
