"""The proof sets for `--task classification`, built offline from the official files in ../shared/data.

    python bench/build_owndata.py --out runs/owndata     # writes the three sets below, prints their sizes

- `sst2/train.csv`, `sst2/dev.csv`: SST-2 as it is, as CSV (`sentence,label`) with the labels as the words
  `negative` / `positive`: through the generic path it must reproduce `--task sst2` exactly.
- `qnli/train.jsonl`, `qnli/test.jsonl`: sentence pairs built as GLUE's QNLI was (Wang et al., 2018), from
  SQuAD v1.1 dev: each question paired with each sentence of its paragraph, `entailment` where the sentence
  holds a reference answer's span, else `not_entailment` (QNLI then dropped pairs of low word overlap; these
  are all kept). Split by article with a seed, so no paragraph is on both sides.
- `titles/train.tsv`, `titles/test.tsv`: 48 classes, each SQuAD v1.1 dev question labelled with the title
  of its Wikipedia article (underscores as spaces, words a prompt can score), split by question with a seed;
  a question's whitespace runs become one space (a few hold a tab, which a TSV field cannot).

Only the seeded split of `data.splits` is used, so the sets are the same on any machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.splits import holdout_split  # noqa: E402
from data.sst2 import read_sst2_tsv  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# After . ! ? (and a closing quote or bracket), before a capital or digit: ". The", '." He', "? 1990";
# not after an initial or a common abbreviation ("F. D. Cohn, Jr. was", "St. Louis").
SENTENCE_END = re.compile(r"(?<![\s.][A-Z]\.)(?<!^[A-Z]\.)(?<!\b(?:Mr|Dr|St|Jr|Sr|Mt|vs)\.)(?<=[.!?])"
                          r"([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of a paragraph's sentences: split after . ! ? and before a capital or digit."""
    spans, start = [], 0
    for boundary in SENTENCE_END.finditer(text):
        spans.append((start, boundary.end(1)))  # the sentence keeps its closing quote or bracket
        start = boundary.end()
    return spans + [(start, len(text.rstrip()))]


def squad_articles(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def qnli_pairs(articles: list[dict]) -> list[dict]:
    rows = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = sentences(context)
            for qa in paragraph["qas"]:
                answers = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa["answers"]]
                for lo, hi in spans:
                    holds = any(lo <= start and end <= hi for start, end in answers)
                    rows.append({"question": qa["question"].strip(), "sentence": context[lo:hi],
                                 "label": "entailment" if holds else "not_entailment"})
    return rows


def title_questions(articles: list[dict]) -> list[tuple[str, str]]:
    return [(" ".join(qa["question"].split()), article["title"].replace("_", " "))
            for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def write_table(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """CSV (quoted where a field needs it) or, for a .tsv path, GLUE's TSV: tab-separated, no quoting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if path.suffix == ".tsv":
            assert not any(c in field for row in rows for field in row for c in "\t\n\r"), path
            f.writelines("\t".join(row) + "\n" for row in [header, *rows])
        else:
            csv.writer(f, lineterminator="\n").writerows([header, *rows])


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/owndata"))
    parser.add_argument("--shared", type=Path, default=SHARED, help="the folder holding sst2/ and squad/")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    names = ("negative", "positive")
    for part in ("train", "dev"):
        rows = [(e.text, names[e.label]) for e in read_sst2_tsv(args.shared / "sst2" / f"{part}.tsv")]
        write_table(args.out / "sst2" / f"{part}.csv", ("sentence", "label"), rows)
        print(f"sst2/{part}.csv: {len(rows):,} sentences")
    articles = squad_articles(args.shared / "squad" / "dev-v1.1.json")
    train_articles, test_articles = holdout_split(articles, 0.2, args.seed)
    for part, chosen in (("train", train_articles), ("test", test_articles)):
        pairs = qnli_pairs(chosen)
        write_jsonl(args.out / "qnli" / f"{part}.jsonl", pairs)
        entailed = sum(p["label"] == "entailment" for p in pairs)
        print(f"qnli/{part}.jsonl: {len(chosen)} articles, {len(pairs):,} pairs ({entailed:,} entailment)")
    train_questions, test_questions = holdout_split(title_questions(articles), 0.2, args.seed)
    for part, rows in (("train", train_questions), ("test", test_questions)):
        write_table(args.out / "titles" / f"{part}.tsv", ("question", "title"), rows)
        print(f"titles/{part}.tsv: {len(rows):,} questions, {len({t for _, t in rows})} titles")


if __name__ == "__main__":
    main()
