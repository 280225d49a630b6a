"""Where the data comes from: a local path, a one-time download, or the bundled sample.

`--data` is one of
- a path: SST-2 as a directory holding GLUE's `train.tsv` / `dev.tsv` or one TSV file;
  SQuAD as a directory holding `train-vX.json` / `dev-vX.json` or one official JSON file;
- a canonical name, `sst2`, `squad` (v1.1, or v2.0 with `squad_version="2.0"`) or
  `squad_v2`, downloaded once from the public location into the cache directory
  (`$LLAMA_HEADS_DATA`, default `~/.cache/llama-heads/data`). A download goes to a
  temporary directory, is parsed and checked against the official example count, and
  only then renamed into place, so the cache never holds a partial or wrong file;
- `sample`: the small files bundled in `data/samples/` (holdout split only).

A name wins over a same-named directory: write `./sst2` to mean the directory.

Then `split="holdout"` is the original protocol (a seeded 80:20 split of the training
file, see `data.splits`), and `split="dev"` trains on the training file and tests on
the official dev file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Hashable

from errors import ArgumentParser, UserError, exit_on_user_error

from .splits import holdout_split, take
from .qa_jsonl import read_squad_jsonl
from .squad import check_answer_starts, read_squad_json
from .sst2 import read_sst2_tsv

SAMPLES = {"sst2": Path(__file__).parent / "samples" / "sst2.tsv",
           "squad": Path(__file__).parent / "samples" / "squad_v2.json"}
GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
SQUAD = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"


@dataclasses.dataclass(frozen=True)
class Download:
    """One official file: where it is published, its name in the cache, its example count."""

    url: str
    cache_name: str
    count: int
    member: str | None = None  # the file inside a zip archive


CANONICAL = {
    "sst2": {"train": Download(GLUE_SST2, "sst2/train.tsv", 67_349, "SST-2/train.tsv"),
             "dev": Download(GLUE_SST2, "sst2/dev.tsv", 872, "SST-2/dev.tsv")},
    "squad": {"train": Download(SQUAD + "train-v1.1.json", "squad/train-v1.1.json", 87_599),
              "dev": Download(SQUAD + "dev-v1.1.json", "squad/dev-v1.1.json", 10_570)},
    "squad_v2": {"train": Download(SQUAD + "train-v2.0.json", "squad/train-v2.0.json", 130_319),
                 "dev": Download(SQUAD + "dev-v2.0.json", "squad/dev-v2.0.json", 11_873)},
}


def cache_dir() -> Path:
    return Path(os.environ.get("LLAMA_HEADS_DATA") or Path.home() / ".cache" / "llama-heads" / "data")


@dataclasses.dataclass(frozen=True)
class DataFormat:
    """How one data set's files are named, read, checked, and balanced by a quick --limit."""

    file_names: Callable[[str], tuple[str, str]]  # SQuAD version -> (training file, dev file)
    read: Callable[[Path], list]
    group: Callable[[Any], Hashable]  # the class a --limit sample keeps in proportion
    check: Callable[[list, Path, str], None] = lambda examples, path, squad_version: None


def load_task_data(name: str, data: str, split: str = "holdout", seed: int = 1,
                   limit: int | None = None, eval_limit: int | None = None,
                   squad_version: str = "1.1") -> tuple[list, list]:
    """(train, test) examples of data set `name`: `SentenceExample`s for sst2, `QAExample`s for squad.

    `limit` / `eval_limit` keep that many of a seeded shuffle of train / test, stratified
    by label (SST-2) or by answerable/unanswerable (SQuAD), so a quick run keeps the balance.
    """
    if name not in FORMATS:
        raise UserError(f"unknown task {name!r}: expected {' or '.join(FORMATS)}")
    if split not in ("holdout", "dev"):
        raise UserError(f"unknown split {split!r}: expected holdout or dev")
    if squad_version not in ("1.1", "2.0"):
        raise UserError(f"unknown SQuAD version {squad_version!r}: expected 1.1 or 2.0")
    spec = FORMATS[name]
    train_path, test_path = resolve_files(name, data, split, squad_version)
    files = {train_path: spec.read(train_path)} | ({test_path: spec.read(test_path)} if test_path else {})
    for path, examples in files.items():
        spec.check(examples, path, squad_version)
    items = files[train_path]
    train, test = holdout_split(items, 0.2, seed) if test_path is None else (items, files[test_path])
    return take(train, limit, seed, spec.group), take(test, eval_limit, seed, spec.group)


def resolve_files(name: str, data: str, split: str, squad_version: str) -> tuple[Path, Path | None]:
    """(training file, dev file or None when the training file is to be split)."""
    if data == "sample":
        if split == "dev":
            raise UserError("the bundled sample has no dev file: use --split holdout with --data sample")
        return SAMPLES[name], None
    if data in CANONICAL:
        if not data.startswith(name):
            raise UserError(f"--data {data} is not data for the {name} task")
        download = VERSIONED.get((data, squad_version), data)
        return fetch(download, "train"), fetch(download, "dev") if split == "dev" else None
    path = Path(data).expanduser()
    if path.is_file():
        if split == "dev":
            raise UserError(f"{path} is one file, which --split holdout can split; for --split dev "
                            "pass the directory holding the training and dev files")
        return path, None
    if not path.is_dir():
        raise UserError(f"{data}: no such file or directory, and not one of the names "
                        f"{', '.join(CANONICAL)} or sample")
    names = FORMATS[name].file_names(squad_version)
    needed = names if split == "dev" else names[:1]
    for file_name in needed:
        if not (path / file_name).is_file():
            raise UserError(f"{path}: no {file_name} in this directory; pass the file to split "
                            "itself (--split holdout) or a directory holding " + " and ".join(needed))
    return path / names[0], path / names[1] if split == "dev" else None


def fetch(name: str, part: str) -> Path:
    """The cached path of CANONICAL[name][part], downloading and verifying it the first time."""
    spec = CANONICAL[name][part]
    target = cache_dir() / spec.cache_name
    if target.is_file():
        return target
    siblings = [s for s in CANONICAL[name].values() if s.url == spec.url]  # one zip, several files
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        raw = Path(tmp) / "download"
        _download(spec.url, raw)
        ready = []
        for s in siblings:
            file = Path(tmp) / Path(s.cache_name).name
            if s.member:
                _extract(raw, s, file)
            else:
                raw.rename(file)
            _verify(file, s)
            ready.append((file, cache_dir() / s.cache_name))
        for file, final in ready:
            os.replace(file, final)  # atomic: the name appears only when the file is complete
    return target


def _download(url: str, dest: Path) -> None:
    print(f"downloading {url} ...", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:  # URLError, HTTPError and timeouts are all OSErrors
        reason = getattr(err, "reason", None) or err
        raise UserError(f"cannot download {url} ({reason}); offline? Pass --data PATH to local "
                        "copies of the official files, or --data sample") from None


def _extract(archive: Path, spec: Download, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(spec.member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"{spec.url}: not the expected archive ({err}); nothing was saved") from None


def _verify(file: Path, spec: Download) -> None:
    try:
        count = len(FORMATS["sst2" if file.suffix == ".tsv" else "squad"].read(file))
    except UserError as err:
        raise UserError(f"{spec.url}: the download is not valid ({err}); nothing was saved") from None
    if count != spec.count:
        raise UserError(f"{spec.url}: {spec.cache_name} has {count:,} examples, the official file "
                        f"{spec.count:,}; nothing was saved")


def _check_squad(examples: list, path: Path, squad_version: str) -> None:
    """Refuse v2 data for a v1.1 run (its unanswerable questions would be scored wrongly), and a file
    whose answer_starts are shifted; a few answers off their context are kept, with a note."""
    if squad_version == "1.1" and any(e.is_impossible for e in examples):
        raise UserError(f"{path} has unanswerable questions (SQuAD 2.0): pass --squad-version 2.0")
    note = check_answer_starts(examples, path)
    if note:
        print(f"note: {path}: {note}", file=sys.stderr)


FORMATS = {
    "sst2": DataFormat(lambda version: ("train.tsv", "dev.tsv"), read_sst2_tsv, lambda e: e.label),
    "squad": DataFormat(lambda version: (f"train-v{version}.json", f"dev-v{version}.json"), read_squad_json,
                        lambda e: "no answer" if e.is_impossible else "answer", _check_squad),
}
FORMATS["classification"], FORMATS["qa"] = FORMATS["sst2"], FORMATS["squad"]  # --limit stratifies them alike
VERSIONED = {("squad", "2.0"): "squad_v2"}


def read_qa_file(path: str | Path, squad_version: str) -> list:
    """A QA file of the user's: official SQuAD JSON (.json) or Hugging Face squad-layout JSONL (.jsonl), checked."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise UserError(f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; QA files are SQuAD's .json "
                        "or Hugging Face squad-layout .jsonl")
    examples = read_squad_jsonl(path) if path.suffix.lower() == ".jsonl" else read_squad_json(path)
    _check_squad(examples, path, squad_version)
    return examples  # --data squad means the files of --squad-version


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Load (and on first use download) a task's data and print what the split holds."""
    parser = ArgumentParser(description=main.__doc__)
    parser.add_argument("--task", choices=sorted(SAMPLES), required=True)  # the data sets with a --data name
    parser.add_argument("--data", required=True, help="a path, sst2, squad, squad_v2 or sample")
    parser.add_argument("--split", choices=("holdout", "dev"), default="holdout")
    parser.add_argument("--squad-version", choices=("1.1", "2.0"), default="1.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--eval-limit", type=int)
    args = parser.parse_args(argv)
    train, test = load_task_data(args.task, args.data, args.split, args.seed, args.limit,
                                 args.eval_limit, args.squad_version)
    for name, part in (("train", train), ("test", test)):
        labels = Counter(FORMATS[args.task].group(e) for e in part)
        print(f"{name}: {len(part):,} examples ({', '.join(f'{k}: {v:,}' for k, v in sorted(labels.items()))})")


if __name__ == "__main__":
    main()
