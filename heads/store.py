"""A persistent store of frozen states, so that the frozen pass never runs twice over the same inputs.

The frozen pass is nearly all of a run's time (2,006 of 2,086 s on the whole SQuAD holdout), yet
its output is fixed by a few things: the base's weights, dtype and device type, the token
sequences fed in, and which state is kept (block, pooling, positions). As Hugging Face `datasets`
does with its fingerprints, an entry is stored under the hash of exactly those, so another head
setting (--lr, --epochs), readout selection, or eval.py on the same split finds it and skips the
pass. The token sequences are hashed themselves, which covers the data file, split, limit, seed,
tokenizer and window settings at once.

An entry is a directory `<root>/<key>/`: `meta.json` (what it holds), `states.bin` (rows, C)
reserved in full when it is made (a full disk is an error then, never mid-pass), and `done.bin`,
one byte per sequence. The pass writes in chunks of batches; after each chunk the states are
flushed to disk and only then is `done.bin` replaced (write, fsync, rename). A run killed
mid-chunk therefore leaves that chunk unmarked: it is recomputed, never read half-written.

Disk use is bounded: before an entry is made, the least recently used entries are evicted until
the store fits its limit. An entry in use holds a shared `flock`; eviction skips it. The store is
listed and cleared with `python states.py list|clear`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from data.batching import padded_batches
from errors import UserError

from .cache import size_text

VERSION = 1  # bump when the frozen pass's numbers change for the same inputs
CHUNKS = 50  # a pass is made durable in at most this many steps: a killed run loses at most 2% of it
DEFAULT_LIMIT_GIB = 100.0
GIB = 2**30


def default_root() -> Path:
    """Beside the GGUF conversions: $LLAMA_HEADS_STATES, else ~/.cache/llama-heads/states."""
    return Path(os.environ.get("LLAMA_HEADS_STATES") or Path.home() / ".cache" / "llama-heads" / "states")


def digest(*parts) -> str:
    """sha256 of JSON-able parts; lists of token lists are hashed as int64 arrays (fast on millions of tokens)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, list) and part and isinstance(part[0], list):
            h.update(np.asarray([len(p) for p in part], dtype=np.int64).tobytes())
            h.update(np.concatenate([np.asarray(p, dtype=np.int64) for p in part]).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True).encode())
        h.update(b"|")
    return h.hexdigest()


def weights_identity(directory: Path) -> str:
    """A checkpoint directory's identity without reading gigabytes: config.json, and per weight file its
    name, resolved name (a content hash in the Hub cache), size, mtime and first and last MiB."""
    h = hashlib.sha256((directory / "config.json").read_bytes())
    for path in sorted(directory.glob("*.safetensors")):
        stat = path.stat()
        h.update(f"{path.name}|{path.resolve().name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        with path.open("rb") as f:
            h.update(f.read(2**20))
            f.seek(max(0, stat.st_size - 2**20))
            h.update(f.read(2**20))
    return h.hexdigest()


@dataclasses.dataclass
class Entry:
    """One stored table: `states` (rows, C) memmap and `done` (items,) bool, held under a shared lock."""

    path: Path
    states: np.memmap
    done: np.ndarray
    lock: int  # the file descriptor holding the entry's flock

    def missing(self) -> set[int]:
        return set(np.flatnonzero(~self.done).tolist())

    def commit(self, items: list[int]) -> None:
        """Make `items`' states durable, then (only then) mark them done."""
        self.states.flush()  # msync: the states are on disk before the mark that says so
        self.done[items] = True
        tmp = self.path / "done.bin.tmp"
        with tmp.open("wb") as f:
            f.write(self.done.astype(np.uint8).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / "done.bin")

    def close(self) -> None:
        os.close(self.lock)


class StateStore:
    """Entries of frozen states under `root`, for one base (weights, dtype, device type), at most `limit` bytes."""

    def __init__(self, root: Path, base: dict, limit: int) -> None:
        self.root, self.base, self.limit = Path(root), base, limit
        self.open_entries: list[Entry] = []

    def usage(self) -> str:
        """'3 entries, 1.2 GiB': what the store holds now, for every base."""
        entries = list_entries(self.root)
        return f"{len(entries)} entries, {size_text(sum(e['bytes'] for e in entries))}"

    def key(self, fields: dict) -> str:
        return digest(VERSION, self.base, fields)[:32]

    def entry(self, fields: dict, items: int, rows: int, dim: int, dtype: np.dtype, inputs: str) -> Entry | None:
        """The stored entry for `fields` (made, reserved and empty if new); None when it cannot be stored
        (larger than the limit, no room on the disk, or being written by another run): the caller then
        computes without it, as before."""
        dtype = np.dtype(dtype)
        path = self.root / self.key({**fields, "inputs": inputs})
        size = rows * dim * dtype.itemsize
        if size == 0:  # nothing to store (and an empty file cannot be mapped)
            return None
        if not path.is_dir():
            if not self.make_room(size):
                print(f"states store: {size_text(size)} of states do not fit --cache-limit "
                      f"{size_text(self.limit)} or the free disk at {self.root}; computing them without storing")
                return None
            make_entry(path, {**fields, "base": self.base, "inputs": inputs, "items": items, "rows": rows,
                              "dim": dim, "dtype": dtype.name, "bytes": size, "version": VERSION})
        lock = os.open(path / "meta.json", os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # being evicted right now
            os.close(lock)
            return None
        os.utime(path / "meta.json")  # last used, for eviction
        done = np.fromfile(path / "done.bin", dtype=np.uint8).astype(bool)
        states = np.memmap(path / "states.bin", dtype=dtype, mode="r+", shape=(rows, dim))
        entry = Entry(path, states, done, lock)
        self.open_entries.append(entry)
        return entry

    def make_room(self, size: int) -> bool:
        """Evict least recently used entries (not in use) until `size` more bytes fit the limit and the disk."""
        if size > self.limit:
            return False
        entries = sorted(list_entries(self.root), key=lambda e: e["last_used"])
        used = sum(e["bytes"] for e in entries)
        for e in entries:
            if used + size <= self.limit and shutil.disk_usage(self.root).free > size + GIB:
                break
            if remove_entry(e["path"]):
                used -= e["bytes"]
        return used + size <= self.limit and shutil.disk_usage(self.root).free > size

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Entries opened inside are let go on leaving (their locks released, so eviction may take them): for a
        store that lives on, call after call, such as a loaded head's (`heads.load`)."""
        first = len(self.open_entries)
        try:
            yield
        finally:
            for entry in self.open_entries[first:]:
                entry.close()
            del self.open_entries[first:]

    def close(self) -> None:
        for entry in self.open_entries:
            entry.close()
        self.open_entries.clear()


def make_entry(path: Path, meta: dict) -> None:
    """Create an entry atomically: built in a temp directory beside it, then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        with (tmp / "states.bin").open("wb") as f:
            os.posix_fallocate(f.fileno(), 0, meta["bytes"])  # every block now: no SIGBUS when the disk fills
        (tmp / "done.bin").write_bytes(bytes(meta["items"]))
        os.rename(tmp, path)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another run made it first: use theirs
            return
        raise UserError(f"cannot make a states entry of {size_text(meta['bytes'])} in {path.parent} "
                        f"({err.strerror}): free space there, pass another --cache-dir, or --cache-dir none") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def list_entries(root: Path) -> list[dict]:
    """Every entry's metadata, with its path, last use and completed share."""
    found = []
    for meta_path in sorted(Path(root).glob("*/meta.json")):
        if meta_path.parent.name.startswith("."):  # an entry being made (or a run killed while making it)
            continue
        try:
            meta = json.loads(meta_path.read_text())
            done = np.fromfile(meta_path.parent / "done.bin", dtype=np.uint8)
        except (OSError, ValueError):
            continue
        found.append({**meta, "path": meta_path.parent, "last_used": meta_path.stat().st_mtime,
                      "done": int(done.sum())})
    return found


def remove_entry(path: Path) -> bool:
    """Delete an entry unless a run holds it (its shared flock); True when it is gone."""
    try:
        lock = os.open(path / "meta.json", os.O_RDONLY)
    except FileNotFoundError:
        return not path.exists()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(path, ignore_errors=True)  # under the lock: a run opening it now finds it gone or locked
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(lock)


def chunked_pass(sequences: list[list[int]], batches: list[list[int]], pad_id: int, device: torch.device,
                 desc: str, entries: list[Entry | None]) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """`padded_batches` over only the batches holding a sequence some entry still lacks (all of them when an
    entry is None: not stored), committing every entry after each chunk (a run of batches, at most `CHUNKS`
    per pass) once the caller has written it.

    The batches are the full pass's own, so a resumed pass computes each sequence in the batch it
    would have had: the stored numbers equal an uninterrupted pass's bit for bit.
    """
    stored = [e for e in entries if e is not None]
    everything = set(range(len(sequences)))
    missing = everything if not stored or len(stored) < len(entries) else set().union(*(e.missing() for e in stored))
    pending = [b for b in batches if missing.intersection(b)]
    size = max(1, -(-len(batches) // CHUNKS))
    if stored:
        print(f"{desc}: {len(sequences) - len(missing):,} of {len(sequences):,} sequences reused from "
              f"the store; computing {len(missing):,} in {-(-len(pending) // size)} chunk(s)", flush=True)
    order = [i for b in pending for i in b]
    local, first = [], 0
    for b in pending:
        local.append(list(range(first, first + len(b))))
        first += len(b)
    chunk: list[int] = []
    for n, (batch, input_ids, attention_mask) in enumerate(
            padded_batches([sequences[i] for i in order], local, pad_id, device, desc), 1):
        original = [order[i] for i in batch]
        yield original, input_ids, attention_mask
        chunk += original
        if n % size == 0 or n == len(pending):
            for entry in stored:
                entry.commit(chunk)
            chunk = []


def open_store(cache_dir: str, checkpoint: Path, dtype: torch.dtype, device: torch.device,
               limit_gib: float) -> StateStore | None:
    """The store for this base, or None for `--cache-dir none`."""
    if cache_dir == "none":
        return None
    root = Path(cache_dir).expanduser() if cache_dir != "auto" else default_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot use --cache-dir {root} ({err.strerror}): pass another directory, "
                        "or --cache-dir none to store no states") from None
    return StateStore(root, base_identity(checkpoint, dtype, device), int(limit_gib * GIB))


def base_identity(checkpoint: Path, dtype: torch.dtype, device: torch.device) -> dict:
    """What of the base every entry's key holds: its weights, dtype, device type and torch version."""
    return {"weights": weights_identity(checkpoint), "dtype": str(dtype).removeprefix("torch."),
            "device": device.type, "torch": torch.__version__}


def describe(root: Path) -> list[str]:
    """One line per entry, most recently used first, and a total: what `python states.py list` prints."""
    entries = sorted(list_entries(root), key=lambda e: e["last_used"], reverse=True)
    lines = []
    for e in entries:
        what = ", ".join(f"{k}={e[k]}" for k in ("states", "block", "pool") if k in e)
        lines.append(f"{e['path'].name[:12]}  {size_text(e['bytes']):>10}  {e['done']:,}/{e['items']:,} sequences  "
                     f"last used {time.strftime('%Y-%m-%d %H:%M', time.localtime(e['last_used']))}  {what}")
    return lines + [f"{len(entries)} entries, {size_text(sum(e['bytes'] for e in entries))} in {root}"]


def clear(root: Path) -> tuple[int, int]:
    """Remove every entry no running job holds (and any a killed run was making): (removed, kept in use)."""
    for partial in root.glob(".*.tmp"):
        shutil.rmtree(partial, ignore_errors=True)
    entries = list_entries(root)
    kept = [e for e in entries if not remove_entry(e["path"])]
    return len(entries) - len(kept), len(kept)
