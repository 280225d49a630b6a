"""One run per output directory, claimed before any work, and stopped cleanly by Ctrl-C or SIGTERM.

Two runs writing one directory mix silently (one run's config beside the other's head), and a
directory on a read-only or full disk was found only after the frozen pass. So before the base
is loaded, rank 0 takes an exclusive `flock` on `<output>/.lock` for the whole run (a second
run is told which process holds it), checks what the directory holds, and writes a probe file.
The checkpoint carries a hash of the settings that determine training (paths resolved, the
output directory itself left out, so a moved directory resumes); `--resume` compares it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch

from errors import UserError
from heads.cache import size_text

from . import atomic

T = TypeVar("T")
LOCK_FILE = ".lock"
PROBE_BYTES = 2**20  # a run's outputs (head, checkpoint, predictions, pictures) are about this size at least
PATH_SETTINGS = ("model", "data")  # settings that may name a file: compared resolved
NOT_SETTINGS = ("output",)  # where the run is, not what it computes


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's or torchrun's stop), raised where Ctrl-C would be."""


def resolved(config: dict) -> dict:
    """The settings with paths that exist made absolute (a relative path means the same file from anywhere)."""
    return {k: str(Path(v).resolve()) if k in PATH_SETTINGS and isinstance(v, str) and Path(v).exists() else v
            for k, v in config.items()}


def settings_hash(config: dict) -> str:
    """sha256 of the settings that determine training (output location excluded, paths resolved)."""
    kept = {k: v for k, v in resolved(config).items() if k not in NOT_SETTINGS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


_claims: list[contextlib.ExitStack] = []  # one per `holding` call in progress


def holding(main: Callable[..., T]) -> Callable[..., T]:
    """Decorator for a script's `main`: SIGTERM stops it as Ctrl-C does, and the directory `claim` takes in
    it is held until it returns (or fails), then released."""
    @functools.wraps(main)
    def guarded(*args, **kwargs):
        with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            _claims.append(stack)
            try:
                return main(*args, **kwargs)
            finally:
                _claims.pop()

    return guarded


def claim(output: Path, config: dict, *, resume: bool, overwrite: bool, write: bool) -> None:
    """`claimed`, held until the `holding` main returns."""
    _claims[-1].enter_context(claimed(output, config, resume=resume, overwrite=overwrite, write=write))


@contextlib.contextmanager
def claimed(output: Path, config: dict, *, resume: bool, overwrite: bool, write: bool) -> Iterator[None]:
    """Hold `output` for the run: refuse another run's directory, lock it and prove it writable (when `write`,
    on rank 0), before any work. A directory this call created and the run left empty is removed after."""
    if not write:
        check_contents(output, config, resume=resume, overwrite=overwrite)
        yield
        return
    created = not output.exists()
    lock = take_lock(output)
    try:
        check_contents(output, config, resume=resume, overwrite=overwrite)
        probe(output)
        yield
    finally:
        if created and {p.name for p in output.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(output, ignore_errors=True)  # a run that failed before writing leaves nothing
        os.close(lock)


def take_lock(output: Path) -> int:
    """Create `output` and hold its lock (released when the process ends, however it ends)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(output / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:
        raise UserError(f"--output {output}: a file is in the way (not a directory); choose another --output") from None
    except NotADirectoryError:
        raise UserError(f"--output {output}: a parent of it is a file, not a directory; choose another --output") \
            from None
    except OSError as err:
        raise UserError(f"cannot create --output {output} ({err.strerror}); choose a writable --output") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{output} is in use by process {holder} (another run writing there); wait for it to end "
                        "or choose another --output") from None
    with contextlib.suppress(OSError):  # who holds it, for the next run's message (a full disk may refuse)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}".encode(), 0)
    return fd


def probe(output: Path) -> None:
    """Write and remove PROBE_BYTES in `output`: a read-only or full disk is one line now, not after an hour."""
    path = output / f".probe-{os.getpid()}"
    try:
        with path.open("wb") as f:
            f.write(bytes(PROBE_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise UserError(write_failure(output, err)) from None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def write_failure(where: Path, err: OSError) -> str:
    """The one line for a failed write: what, why, and the free space in a unit that is not 0.0."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(where if where.is_dir() else where.parent).free
        return (f"cannot write in {where}: the disk is full ({size_text(free)} free); free some space or choose "
                "another --output (a run continues from its last checkpoint with --resume)")
    return f"cannot write in {where} ({err.strerror}); choose a writable --output"


def check_contents(output: Path, config: dict, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs: --resume needs this run's checkpoint (same settings hash); otherwise the
    directory must be new, hold only a run stopped before its first epoch, or be --overwrite'n."""
    if resume:
        checkpoint = output / "checkpoint.pt"
        if not checkpoint.is_file():
            raise UserError(f"nothing to resume in {output}: no checkpoint.pt")
        try:
            stored = torch.load(checkpoint, map_location="cpu", weights_only=True).get("settings_sha256")
        except Exception:  # truncated or not a checkpoint at all
            raise UserError(f"{checkpoint} is unreadable (truncated?); rerun without --resume, with --overwrite") \
                from None
        if stored != settings_hash(config):
            raise UserError(f"--resume with other settings than the run in {output}"
                            + changed_settings(output, config) + "; rerun with its settings, or --overwrite")
    elif output.is_dir() and {p.name for p in output.iterdir() if not p.name.startswith(".")} - {
            "train_config.json"} and not overwrite:
        # (a directory holding only train_config.json is a run stopped before its first epoch)
        raise UserError(f"{output} holds another run; pass --overwrite to replace it, "
                        "--resume to continue it, or another --output")


def changed_settings(output: Path, config: dict) -> str:
    """': lr, seed' naming what differs from the directory's train_config.json, when it is readable."""
    try:
        earlier = resolved(json.loads((output / "train_config.json").read_text()))
    except (OSError, ValueError):
        return ""
    now = resolved(config)
    changed = sorted(k for k in set(now) | set(earlier) if k not in NOT_SETTINGS and now.get(k) != earlier.get(k))
    return f": {', '.join(changed)}" if changed else ""


def start(output: Path, config: dict, *, overwrite: bool) -> None:
    """Record this run's settings once its inputs have proved good; --overwrite drops the old checkpoint."""
    if overwrite:
        (output / "checkpoint.pt").unlink(missing_ok=True)
    atomic.write_json(output / "train_config.json", resolved(config))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated`, so it stops the run as Ctrl-C does (message, exit code,
    the last checkpoint and the stored states kept) instead of killing it with no word (exit 143)."""
    def stop(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except Terminated:
        print("stopped by SIGTERM: what was finished is kept (stored states, the last epoch's checkpoint); "
              "rerun the same command (with --resume once training had started)", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
