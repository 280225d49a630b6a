"""The device and dtype of the frozen base, and how much room each place has for cached states.

`--dtype auto` picks bfloat16 on CUDA (float16 where bf16 is unsupported) and, on a CPU,
bfloat16 only where the CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX). There, with
SmolLM2-135M on 2 cores, bf16 cost nothing measurable: SST-2 (2,000 training sentences, dev 872)
accuracy 75.57 vs 75.46 in float32, 32 s vs 77 s; SQuAD v1.1 (400 / 200 questions) F1 10.71 vs
10.63, 125 s vs 252 s. Elsewhere bf16 is emulated and slower than float32, so auto keeps float32.

The free-space probes feed `training.plan`, which decides where the state cache goes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import torch

from errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU has bf16 matrix instructions (x86 AVX512-BF16 or AMX-BF16).

    Read from the kernel's CPU flags; where there is no /proc/cpuinfo, torch's own probe.
    """
    try:
        return bool(set(Path(cpuinfo).read_text().split()) & set(BF16_CPU_FLAGS))
    except OSError:
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cuda_has_native_bf16(device: torch.device) -> bool:
    """True when this GPU multiplies bf16 natively (Ampere and later). Asked of `device` itself, not the
    current GPU, and without counting emulation: a V100 or T4 emulates bf16, slower than fp16."""
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_device(device_flag: str, dtype_flag: str, *, cpu_bf16: Callable[[], bool] = cpu_has_native_bf16,
                   cuda_bf16: Callable[[torch.device], bool] = cuda_has_native_bf16) -> tuple[torch.device, torch.dtype]:
    """--device and --dtype -> (device, dtype of the frozen base); `cpu_bf16`, `cuda_bf16` are injectable for tests."""
    device = torch.device("cuda" if device_flag == "auto" and torch.cuda.is_available() else
                          "cpu" if device_flag == "auto" else device_flag)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but no CUDA GPU is available; use --device cpu")
    if dtype_flag != "auto":
        return device, DTYPES[dtype_flag]
    if device.type == "cuda":
        return device, torch.bfloat16 if cuda_bf16(device) else torch.float16
    return device, torch.bfloat16 if device.type == "cpu" and cpu_bf16() else torch.float32


@dataclasses.dataclass
class FreeSpace:
    """Bytes free in each place a state cache can go; `accelerator` is None on a CPU run.

    Under torchrun the ranks of one node share its RAM and disk: `ram` and `disk` are then this
    rank's equal share (`shares` ranks on the node); each rank has a GPU of its own.
    """

    accelerator: int | None
    ram: int
    disk: int
    disk_path: str
    shares: int = 1


def free_accelerator_bytes(device: torch.device) -> int | None:
    """Free memory on a CUDA device now (after the weights, if they are loaded); None for the CPU."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return free


def available_ram_bytes(meminfo: str | Path = "/proc/meminfo") -> int:
    """Memory the kernel could hand out without swapping (MemAvailable), else free physical pages."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk_bytes(path: str | None = None) -> int:
    """Free bytes on the disk holding `path` (default: the temp directory, honouring $TMPDIR)."""
    return shutil.disk_usage(path or tempfile.gettempdir()).free


def local_ranks() -> int:
    """Processes torchrun started on this node (LOCAL_WORLD_SIZE), 1 without torchrun."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def free_space(device: torch.device) -> FreeSpace:
    """Probe all three places at once, as the plan sees them: RAM and disk as this rank's share of the node's."""
    shares = local_ranks()
    return FreeSpace(accelerator=free_accelerator_bytes(device), ram=available_ram_bytes() // shares,
                     disk=free_disk_bytes() // shares, disk_path=tempfile.gettempdir(), shares=shares)
