"""Taking real secrets out of whatever an upstream sends back, in the encodings an echo may use.

An upstream that reflects its request (a debugging endpoint, an error message, a redirect)
can carry an attached secret back. Before a response reaches the sandbox, the memo or any
record, `SecretScrubber.scrub` replaces with the secret's mask every stretch of text that holds

- the secret as is, percent-encoded (`%2F` or `%2f`, `+` for space, any mix, twice over),
  JSON-, Python- or HTML-escaped (`\\/`, `\\u002f`, `\\x2f`, `&#47;`), wrapped over lines, or
  in UTF-16 read as a one-byte charset;
- its base64 (standard or URL-safe alphabet, padded or not, at each of the three byte
  alignments it can have inside a longer encoded value);
- its hex (either case), and the secret itself in any case;
- any piece of one of those at least `min_fragment` secret characters long, so a truncated
  or partial echo (a prefix, a suffix, a middle part, a secret split over headers and body)
  is caught too.

The forms above are searched in the text as is and after each of up to three rounds of
decoding; a stretch found in decoded text is mapped back to the original offsets and masked.
"""

from __future__ import annotations

import base64
import re
from array import array
from collections.abc import Mapping
from functools import lru_cache

_ESCAPE = re.compile(
    r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|\\[/\\\"'nr]|&#[0-9]{1,7};|&#[xX][0-9A-Fa-f]{1,6};"
    r"|&(?:amp|lt|gt|quot|apos|sol);|[\r\n\x00]"
)
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&sol;": "/"}
_DECODE_ROUNDS = 3
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
DEFAULT_MIN_FRAGMENT = 8


class SecretScrubber:
    """Masks real secrets in text: `SecretScrubber({mask: real}).scrub(text)`."""

    def __init__(self, secrets: Mapping[str, str], *, min_fragment: int = DEFAULT_MIN_FRAGMENT) -> None:
        self._exact: dict[int, dict[str, str]] = {}
        """Window size -> every window of that size of an exact-case form -> its mask."""
        self._folded: dict[int, dict[str, str]] = {}
        """The same for the forms compared ignoring ASCII case (as is, hex), in lower case."""
        for mask, real in secrets.items():
            if mask and real and mask != real:
                self._add_forms(mask, real, min_fragment)
        alphabet = {char for windows in (*self._exact.values(), *self._folded.values()) for w in windows for char in w}
        alphabet |= {char.upper() for windows in self._folded.values() for w in windows for char in w}
        shortest = min((*self._exact, *self._folded), default=0)
        # only runs of characters some form uses can hold a window: the text between is skipped in C
        self._runs = re.compile(f"[{''.join(sorted(map(re.escape, alphabet)))}]{{{shortest},}}") if alphabet else None

    def __bool__(self) -> bool:
        return self._runs is not None

    def scrub(self, text: str) -> str:
        """`text` with every stretch that carries a secret (in any known form) replaced by its mask."""
        if self._runs is None or not text:
            return text
        hits = self._find(text)  # as is: a secret may itself hold what looks like an escape
        decoded = text
        for rounds in range(1, _DECODE_ROUNDS + 1):  # then each round of decoding (doubly encoded echoes)
            decoded, count = _ESCAPE.subn(_decode_match, decoded)
            if not count:
                break
            found = self._find(decoded)
            if found:  # map them back onto the original (only when there is a leak: rare)
                starts = _canonical_starts(text, rounds)
                hits += [(starts[first], starts[after], mask) for first, after, mask in found]
        return _mask_spans(text, hits) if hits else text

    def _find(self, canonical: str) -> list[tuple[int, int, str]]:
        """(start, end, mask) of every window of a secret's form in `canonical`."""
        folded = canonical.translate(_ASCII_LOWER) if self._folded else canonical
        hits: list[tuple[int, int, str]] = []
        for run in self._runs.finditer(canonical) if self._runs is not None else ():
            for sizes, haystack in ((self._exact, canonical), (self._folded, folded)):
                piece = haystack[run.start() : run.end()]
                for size, windows in sizes.items():
                    for window in {piece[i : i + size] for i in range(len(piece) - size + 1)} & windows.keys():
                        found = piece.find(window)
                        while found >= 0:
                            hits.append((run.start() + found, run.start() + found + size, windows[window]))
                            found = piece.find(window, found + 1)
        return hits

    def _add_forms(self, mask: str, real: str, min_fragment: int) -> None:
        raw = real.encode("utf-8")
        fragment = min(len(real), min_fragment)
        for form in {real, real.replace(" ", "+")}:  # compared ignoring case: an echo may change it
            self._add_windows(self._folded, form.translate(_ASCII_LOWER), fragment, mask)
        fragment_b64 = -(-fragment * 4 // 3)
        for alignment in range(3):
            encoded = base64.b64encode(bytes(alignment) + raw).decode("ascii")
            # only the characters that depend on the secret's bytes alone, whatever surrounds it
            core = encoded[-(-alignment * 8 // 6) : (alignment + len(raw)) * 8 // 6]
            for form in (core, core.translate(str.maketrans("+/", "-_"))):
                self._add_windows(self._exact, form, min(fragment_b64, len(form)), mask)
        self._add_windows(self._folded, raw.hex(), 2 * min(len(raw), min_fragment), mask)

    @staticmethod
    def _add_windows(sizes: dict[int, dict[str, str]], form: str, size: int, mask: str) -> None:
        if size <= 0 or len(form) < size:
            return
        windows = sizes.setdefault(size, {})
        for start in range(len(form) - size + 1):
            windows.setdefault(form[start : start + size], mask)


def _canonical_starts(text: str, rounds: int) -> array[int]:
    """Where each character of `text` decoded `rounds` times starts in `text`, then a sentinel `len(text)`.

    So decoded `[a, b)` came from original `[starts[a], starts[b])`.
    """
    starts = array("q", range(len(text) + 1))
    for _ in range(rounds):
        if _ESCAPE.search(text) is None:
            break
        pieces: list[str] = []
        kept = array("q")  # per decoded character of this round: its offset in this round's input
        position = 0
        for match in _ESCAPE.finditer(text):
            pieces.append(text[position : match.start()])
            kept.extend(range(position, match.start()))
            decoded = _decode_match(match)
            if decoded:
                pieces.append(decoded)
                kept.append(match.start())
            position = match.end()
        pieces.append(text[position:])
        kept.extend(range(position, len(text) + 1))
        text, starts = "".join(pieces), array("q", map(starts.__getitem__, kept))
    return starts


def _decode_match(match: re.Match[str]) -> str:
    return _decode_escape(match.group())


@lru_cache(maxsize=4096)
def _decode_escape(escape: str) -> str:
    """One character for an escape; "" for line breaks (base64 and PEM wrap their lines) and NULs (UTF-16)."""
    if escape in ("\r", "\n", "\x00", "\\n", "\\r"):
        return ""
    if escape.startswith("%"):
        return chr(int(escape[1:], 16))
    if escape.startswith(("\\u", "\\x")):
        return chr(int(escape[2:], 16))
    if escape.startswith("\\"):
        return escape[1]
    if escape.startswith("&#"):
        number = escape[3:-1] if escape[2] in "xX" else escape[2:-1]
        code = int(number, 16 if escape[2] in "xX" else 10)
        return chr(code) if code <= 0x10FFFF else ""
    return _ENTITIES[escape]


def _mask_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    spans.sort()
    pieces: list[str] = []
    position = 0
    current_start, current_end, current_mask = spans[0]
    merged: list[tuple[int, int, str]] = []
    for start, end, mask in spans[1:]:
        if start <= current_end:
            current_end = max(current_end, end)
        else:
            merged.append((current_start, current_end, current_mask))
            current_start, current_end, current_mask = start, end, mask
    merged.append((current_start, current_end, current_mask))
    for start, end, mask in merged:
        pieces.append(text[position:start])
        pieces.append(mask)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
