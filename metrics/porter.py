"""Porter stemmer, in the variant rouge-score gets from NLTK (`PorterStemmer()`'s default mode).

That default is NLTK_EXTENSIONS, not the 1980 paper: a few irregular words are
looked up, words of two letters or fewer are kept, "-ied"/"-ies" on four-letter words
keep their "e" ("ties" -> "tie"), y -> i needs a consonant before the y, and
step 2 knows "-fulli" and "-logi" and strips "-alli" first. ROUGE with stemming
only matches rouge-score if every one of those quirks is the same, so each step
here follows that variant rule by rule.

A rule list is applied as in the paper: the first rule whose suffix matches decides,
and if its condition fails the word is left alone (no later rule is tried).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

_VOWELS = frozenset("aeiou")
_IRREGULAR = {
    "skies": "sky", "sky": "sky", "dying": "die", "lying": "lie", "tying": "tie",
    "news": "news", "innings": "inning", "inning": "inning", "outings": "outing",
    "outing": "outing", "cannings": "canning", "canning": "canning", "howe": "howe",
    "proceed": "proceed", "exceed": "exceed", "succeed": "succeed",
}


@lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """The stem of one word; cached because corpora repeat a small vocabulary."""
    word = word.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 2:
        return word
    for step in (_step1a, _step1b, _step1c, _step2, _step3, _step4, _step5a, _step5b):
        word = step(word)
    return word


def _consonants(word: str) -> list[bool]:
    """True where word[i] is a consonant; y is one unless it follows a consonant."""
    flags: list[bool] = []
    for i, ch in enumerate(word):
        if ch in _VOWELS:
            flags.append(False)
        elif ch == "y" and i > 0:
            flags.append(not flags[-1])
        else:
            flags.append(True)
    return flags


def _measure(word: str) -> int:
    """m in [C](VC)^m[V]: how many vowel runs are followed by a consonant."""
    flags = _consonants(word)
    return sum(1 for prev, cur in zip(flags, flags[1:]) if not prev and cur)


def _has_vowel(word: str) -> bool:
    return not all(_consonants(word))


def _ends_double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _consonants(word)[-1]


def _ends_cvc(word: str) -> bool:
    """Condition *o (consonant-vowel-consonant, last not w/x/y), plus NLTK's 2-letter 'vc'."""
    flags = _consonants(word)
    if len(word) == 2:
        return not flags[0] and flags[1]
    return (len(word) >= 3 and flags[-3] and not flags[-2] and flags[-1]
            and word[-1] not in "wxy")


Rule = tuple[str, str, Callable[[str], bool]]


def _first_rule(word: str, rules: list[Rule]) -> str:
    for suffix, replacement, condition in rules:
        if word.endswith(suffix):
            stem_ = word[: len(word) - len(suffix)]
            return stem_ + replacement if condition(stem_) else word
    return word


def _m_gt0(stem_: str) -> bool:
    return _measure(stem_) > 0


def _m_gt1(stem_: str) -> bool:
    return _measure(stem_) > 1


def _always(stem_: str) -> bool:
    return True


def _step1a(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        return word[:-3] + "ie"
    return _first_rule(word, [("sses", "ss", _always), ("ies", "i", _always),
                              ("ss", "ss", _always), ("s", "", _always)])


def _step1b(word: str) -> str:
    if word.endswith("ied"):
        return word[:-3] + ("ie" if len(word) == 4 else "i")
    if word.endswith("eed"):
        return word[:-1] if _measure(word[:-3]) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
            return _restore_e(word[: -len(suffix)])
    return word


def _restore_e(stem_: str) -> str:
    """After -ed/-ing: put back a lost e (conflat -> conflate) or undouble (hopp -> hop)."""
    for suffix in ("at", "bl", "iz"):
        if stem_.endswith(suffix):
            return stem_ + "e"
    if _ends_double_consonant(stem_):
        return stem_ if stem_[-1] in "lsz" else stem_[:-1]
    if _measure(stem_) == 1 and _ends_cvc(stem_):
        return stem_ + "e"
    return stem_


def _step1c(word: str) -> str:
    if word.endswith("y"):
        base = word[:-1]
        if len(base) > 1 and _consonants(base)[-1]:
            return base + "i"
    return word


_STEP2 = [(suffix, replacement, _m_gt0) for suffix, replacement in (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
    ("izer", "ize"), ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"),
    ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
    ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
    ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"), ("fulli", "ful"),
)]


def _step2(word: str) -> str:
    if word.endswith("alli") and _measure(word[:-4]) > 0:
        return _step2(word[:-2])
    # NLTK measures "-logi" words with the "l" kept: the stem condition sees word[:-3].
    logi = ("logi", "log", lambda _: _measure(word[:-3]) > 0)
    return _first_rule(word, _STEP2 + [logi])


_STEP3 = [(suffix, replacement, _m_gt0) for suffix, replacement in (
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"),
    ("ful", ""), ("ness", ""),
)]


def _step3(word: str) -> str:
    return _first_rule(word, _STEP3)


def _ion_condition(stem_: str) -> bool:
    return _measure(stem_) > 1 and stem_[-1] in "st"


_STEP4 = [(suffix, "", _ion_condition if suffix == "ion" else _m_gt1) for suffix in (
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
    "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
)]


def _step4(word: str) -> str:
    return _first_rule(word, _STEP4)


def _step5a(word: str) -> str:
    if word.endswith("e"):
        base = word[:-1]
        m = _measure(base)
        if m > 1 or (m == 1 and not _ends_cvc(base)):
            return base
    return word


def _step5b(word: str) -> str:
    if word.endswith("ll") and _measure(word[:-1]) > 1:
        return word[:-1]
    return word
