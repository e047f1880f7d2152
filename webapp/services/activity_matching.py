"""Propose which journey step each log activity stands for, by name (pure Python, stdlib only).

Mapping a 30-activity log onto a 40-step journey by hand is tedious, and most pairs are obvious
from their names ("Resolve" ~ "Resolved", "work_in_progress" ~ "Work in progress"). This module
proposes; the user confirms. It never touches the database, so it is trivially testable and the
same rules serve the UI, the API and the job that drafts a journey.

Rules:

* Names are compared after normalising: Unicode compatibility form without accents, lower case,
  punctuation and underscores as spaces, runs of space collapsed.
* Score = the larger of difflib's ratio of the two normalised texts (catches "Resolve" ~ "Resolved")
  and the Dice overlap of their word sets (catches reordered or partly shared words: "Ticket
  closed" ~ "Close ticket"), words compared by a light stem where one stem may begin the other
  ("Logged" ~ "Log ticket"). 1.0 for equal normalised names.
* ``previous`` (activity name -> step NAME, from mappings the organisation confirmed earlier) wins
  when a step of that name exists (exact name first, then normalised), whatever the score: a team
  that once said "Status 7" is "Triage" should not have to say it again.
* Each activity maps to at most one step (several activities may share a step); an activity whose
  best score is below ``threshold`` stays unmapped. Equal scores: the earlier step.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ied", "ies", "ed", "es", "s", "e")


def normalise(name: str) -> str:
    """Lower case, accents and punctuation removed, single spaces: "Re-Open_Ticket!" -> "re open ticket"."""
    decomposed = unicodedata.normalize("NFKD", name)
    without_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", without_accents.casefold()).split())


def _stem(word: str) -> str:
    """Strip one common English suffix so "closed", "closes" and "close" compare equal."""
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in text.split())


def _same_word(a: str, b: str) -> bool:
    """Equal stems, or one stem begins the other and is most of it ("log" ~ "logg", "resolv" ~
    "resolution"): cheap stemming across word forms without a dictionary."""
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 3 and len(short) >= 0.6 * len(long_) and long_.startswith(short)


def _word_overlap(wa: frozenset[str], wb: frozenset[str]) -> float:
    """Dice coefficient of two word sets, a word counting as shared when the other has a same word."""
    if not wa or not wb:
        return 0.0
    hit_a = sum(1 for x in wa if any(_same_word(x, y) for y in wb))
    hit_b = sum(1 for y in wb if any(_same_word(x, y) for x in wa))
    return (hit_a + hit_b) / (len(wa) + len(wb))


def _score(
    matcher: difflib.SequenceMatcher[str], wa: frozenset[str], nb: str, wb: frozenset[str], floor: float
) -> float:
    """max(difflib ratio, word overlap) against step text ``nb``; ``matcher`` holds the activity as
    its second sequence (difflib caches that side). The ratio is skipped when its cheap upper bounds
    cannot beat ``floor``, which keeps hundreds of activities x hundreds of steps fast."""
    words = _word_overlap(wa, wb)
    matcher.set_seq1(nb)
    bound = max(words, floor)
    if matcher.real_quick_ratio() < bound or matcher.quick_ratio() < bound:
        return words
    return max(matcher.ratio(), words)


def similarity(a: str, b: str) -> float:
    """Name similarity in [0, 1] (see the module docstring)."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(na)
    return _score(matcher, _words(na), nb, _words(nb), -1.0)


def propose(
    activities: Sequence[str],
    steps: Sequence[tuple[int, str]],
    previous: Mapping[str, str] | None = None,
    *,
    threshold: float = 0.6,
) -> dict[str, int]:
    """Step id per activity (only activities with a proposal); ``steps`` are (id, name) pairs."""
    previous = previous or {}
    by_exact: dict[str, int] = {}
    by_normal: dict[str, int] = {}
    prepared: list[tuple[int, str, frozenset[str]]] = []
    for step_id, name in steps:
        by_exact.setdefault(name, step_id)
        normal = normalise(name)
        if normal:
            by_normal.setdefault(normal, step_id)
            prepared.append((step_id, normal, _words(normal)))

    proposal: dict[str, int] = {}
    for activity in activities:
        if activity in proposal:
            continue
        earlier = previous.get(activity)
        if earlier is not None:
            chosen = by_exact.get(earlier)
            if chosen is None:
                chosen = by_normal.get(normalise(earlier))
            if chosen is not None:
                proposal[activity] = chosen
                continue
        normal = normalise(activity)
        if not normal:
            continue
        exact = by_normal.get(normal)
        if exact is not None:
            proposal[activity] = exact
            continue
        words = _words(normal)
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(normal)
        best_id, best_score = None, threshold
        for step_id, step_normal, step_words in prepared:
            score = _score(matcher, words, step_normal, step_words, best_score)
            if score > best_score or (best_id is None and score >= best_score):
                best_id, best_score = step_id, score
        if best_id is not None:
            proposal[activity] = best_id
    return proposal
