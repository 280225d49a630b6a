"""Read safetensors files straight into pre-allocated tensors.

A safetensors file is an 8-byte little-endian header length, a JSON header
(name -> dtype, shape, byte range) and the raw tensor bytes. Reading each tensor
with `readinto` into its final buffer keeps peak memory at one copy of the
weights: no memory map of the whole file and no intermediate tensor.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Iterator

import torch

from .errors import LlamaError

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_header(path: Path) -> tuple[dict[str, dict], int]:
    """The tensor entries of a file and the byte offset where tensor data starts."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw_len = f.read(8)
        if len(raw_len) < 8:
            raise LlamaError(f"{path} is truncated (no safetensors header); download it again")
        (header_len,) = struct.unpack("<Q", raw_len)
        if 8 + header_len > size:
            raise LlamaError(f"{path} is truncated (header cut off); download it again")
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise LlamaError(f"{path} is not a safetensors file (unreadable header)") from None
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if data_start + end > size:
        raise LlamaError(f"{path} is truncated ({size} bytes, header needs {data_start + end}); "
                        "download it again")
    for name, entry in header.items():
        if entry["dtype"] not in DTYPES:
            raise LlamaError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
    return header, data_start


def iter_tensors(path: Path, header: dict[str, dict], data_start: int,
                 names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, CPU tensor) for `names`, each read once into its own buffer."""
    with open(path, "rb") as f:
        for name in names:
            entry = header[name]
            begin, end = entry["data_offsets"]
            tensor = torch.empty(entry["shape"], dtype=DTYPES[entry["dtype"]])
            f.seek(data_start + begin)
            if tensor.numel():
                buffer = tensor.view(-1).view(torch.uint8).numpy()
                if f.readinto(memoryview(buffer)) != end - begin:
                    raise LlamaError(f"{path}: tensor {name} is cut short; download it again")
            yield name, tensor
