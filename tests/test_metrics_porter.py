"""metrics.porter stems exactly like NLTK's PorterStemmer() in its default mode, which rouge-score uses."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from nltk.stem.porter import PorterStemmer

from metrics.porter import stem

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
NLTK = PorterStemmer()  # NLTK_EXTENSIONS, as rouge_score.tokenizers.DefaultTokenizer builds it

# Every suffix some rule looks at, so generated words walk every branch.
SUFFIXES = ["s", "sses", "ies", "ss", "ied", "eed", "ed", "ing", "at", "bl", "iz", "y", "ational",
            "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization",
            "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti",
            "fulli", "logi", "icate", "ative", "alize", "iciti", "ical", "ful", "ness", "al",
            "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
            "sion", "tion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e", "ll", "ly"]


def generated_words(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(n):
        root = "".join(rng.choice(rng.choice(["aeiouy", letters, "bcdlmnprstwxyz"]))
                       for _ in range(rng.randint(0, 6)))
        word = root + "".join(rng.choice(SUFFIXES) for _ in range(rng.choice([0, 1, 1, 2, 3])))
        if rng.random() < 0.05:
            word += str(rng.randint(0, 99))
        out.append(word)
    return out


def test_generated_words_stem_like_nltk():
    words = set(generated_words(random.Random(0), 30000))
    mismatches = [(w, NLTK.stem(w), stem(w)) for w in words if NLTK.stem(w) != stem(w)]
    assert not mismatches[:10]


def test_nltk_extensions_rather_than_the_original_paper():
    cases = {"dying": "die", "skies": "sky", "ties": "tie", "cried": "cri", "enjoy": "enjoy",
             "happy": "happi", "generically": "gener", "analogi": "analog", "hopefulli": "hope",
             "controll": "control", "caresses": "caress", "hopping": "hop", "filing": "file",
             "agreed": "agre", "feed": "feed", "by": "by", "yyyy": "yyyi", "news": "news"}
    assert {w: stem(w) for w in cases} == {w: NLTK.stem(w) for w in cases} == cases


def test_words_of_the_squad_dev_set_stem_like_nltk():
    path = DATA / "dev-v2.0.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    text = " ".join(par["context"] for art in json.loads(path.read_text())["data"]
                    for par in art["paragraphs"])
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    assert len(words) > 15000
    assert [w for w in words if NLTK.stem(w) != stem(w)] == []
