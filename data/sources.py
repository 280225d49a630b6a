"""Where the data comes from: a local path, a one-time download, or the bundled sample.

`--data` is one of
- a path: SST-2 as a directory holding GLUE's `train.tsv` / `dev.tsv` or one TSV file;
  SQuAD as a directory holding `train-vX.json` / `dev-vX.json` or one official JSON file;
- a canonical name, `sst2`, `squad` (the version of the SQuAD format asked for) or
  `squad_v2`, downloaded once from the public location into the cache directory
  (`$LLAMA_HEADS_DATA`, default `~/.cache/llama-heads/data`). A download goes to a
  temporary directory, is parsed and checked against the official example count, and
  only then renamed into place, so the cache never holds a partial or wrong file;
- `sample`: the small files bundled in `data/samples/` (holdout split only).

What the files are called and how they are read is the task's `DataFormat` (`data.formats`).

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
from typing import Callable

from errors import ArgumentParser, UserError, exit_on_user_error

from .formats import DataFormat
from .splits import holdout_split, take
from .squad import squad_format
from .sst2 import SST2_FORMAT

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


def load_task_data(fmt: DataFormat, data: str, split: str = "holdout", seed: int = 1,
                   limit: int | None = None, eval_limit: int | None = None) -> tuple[list, list]:
    """(train, test) examples of `data` read in format `fmt` (`SentenceExample`s, `QAExample`s, ...).

    `limit` / `eval_limit` keep that many of a seeded shuffle of train / test, stratified
    by the format's `group` (SST-2: the label; SQuAD: answerable or not), so a quick run keeps the balance.
    """
    if split not in ("holdout", "dev"):
        raise UserError(f"unknown split {split!r}: expected holdout or dev")
    train_path, test_path = resolve_files(fmt, data, split)
    files = {train_path: fmt.read(train_path)} | ({test_path: fmt.read(test_path)} if test_path else {})
    for path, examples in files.items():
        fmt.check(examples, path)
    items = files[train_path]
    train, test = holdout_split(items, 0.2, seed) if test_path is None else (items, files[test_path])
    return take(train, limit, seed, fmt.group), take(test, eval_limit, seed, fmt.group)


def resolve_files(fmt: DataFormat, data: str, split: str) -> tuple[Path, Path | None]:
    """(training file, dev file or None when the training file is to be split)."""
    if data == "sample":
        if split == "dev":
            raise UserError("the bundled sample has no dev file: use --split holdout with --data sample")
        return fmt.sample, None
    if data in CANONICAL:
        if data not in fmt.downloads:
            raise UserError(f"--data {data} is not {fmt.name} data")
        download = fmt.downloads[data]
        return fetch(download, "train", fmt.read), fetch(download, "dev", fmt.read) if split == "dev" else None
    path = Path(data).expanduser()
    if path.is_file():
        if split == "dev":
            raise UserError(f"{path} is one file, which --split holdout can split; for --split dev "
                            "pass the directory holding the training and dev files")
        return path, None
    if not path.is_dir():
        raise UserError(f"{data}: no such file or directory, and not one of the names "
                        f"{', '.join(CANONICAL)} or sample")
    names = fmt.file_names
    needed = names if split == "dev" else names[:1]
    for file_name in needed:
        if not (path / file_name).is_file():
            raise UserError(f"{path}: no {file_name} in this directory; pass the file to split "
                            "itself (--split holdout) or a directory holding " + " and ".join(needed))
    return path / names[0], path / names[1] if split == "dev" else None


def fetch(name: str, part: str, read: Callable[[Path], list]) -> Path:
    """The cached path of CANONICAL[name][part], downloading it and checking it with `read` the first time."""
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
            _verify(file, s, read)
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


def _verify(file: Path, spec: Download, read: Callable[[Path], list]) -> None:
    try:
        count = len(read(file))
    except UserError as err:
        raise UserError(f"{spec.url}: the download is not valid ({err}); nothing was saved") from None
    if count != spec.count:
        raise UserError(f"{spec.url}: {spec.cache_name} has {count:,} examples, the official file "
                        f"{spec.count:,}; nothing was saved")


DATA_SETS = {"sst2": lambda version: SST2_FORMAT, "squad": squad_format}  # what the command below reads, by version


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Load (and on first use download) a data set and print what the split holds."""
    parser = ArgumentParser(description=main.__doc__)
    parser.add_argument("--task", choices=sorted(DATA_SETS), required=True, help="whose data set")
    parser.add_argument("--data", required=True, help="a path, sst2, squad, squad_v2 or sample")
    parser.add_argument("--split", choices=("holdout", "dev"), default="holdout")
    parser.add_argument("--squad-version", choices=("1.1", "2.0"), default="1.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--eval-limit", type=int)
    args = parser.parse_args(argv)
    fmt = DATA_SETS[args.task](args.squad_version)
    train, test = load_task_data(fmt, args.data, args.split, args.seed, args.limit, args.eval_limit)
    for name, part in (("train", train), ("test", test)):
        labels = Counter(fmt.group(e) for e in part)
        print(f"{name}: {len(part):,} examples ({', '.join(f'{k}: {v:,}' for k, v in sorted(labels.items()))})")


if __name__ == "__main__":
    main()
