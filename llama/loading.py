"""Find a checkpoint (directory, Hub id, or GGUF) and load it into a model built on `meta`.

Building on the `meta` device allocates nothing; each tensor is then read from disk
into its final dtype and device and assigned in place, so loading costs one copy of
the weights and a bf16 checkpoint never passes through float32.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from .errors import LlamaError

from .config import LlamaConfig, preset_config
from .model import LlamaForCausalLM
from .safetensors_reader import iter_tensors, read_header
from .tokenizer import Tokenizer

HUB_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "*.safetensors", "model.safetensors.index.json"]
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def is_gguf_source(name_or_path: str) -> bool:
    from .gguf_import import GGUF_PRESETS
    return name_or_path in GGUF_PRESETS or str(name_or_path).endswith(".gguf")


def resolve_checkpoint(name_or_path: str | os.PathLike, *, revision: str | None = None,
                       token: str | None = None, config_only: bool = False) -> Path:
    """A local directory holding the checkpoint: as given, converted from GGUF, or downloaded."""
    name = str(name_or_path)
    if is_gguf_source(name):
        from .gguf_import import converted_checkpoint
        return converted_checkpoint(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise LlamaError(f"{path} is a file; pass a checkpoint directory, a .gguf file or a Hub id")
    if REPO_ID.match(name) and not name.startswith("."):
        return _download(name, revision=revision, token=token, config_only=config_only)
    raise LlamaError(f"{name}: no such directory, and not a Hub repo id like 'meta-llama/Llama-3.2-1B'")


def _download(repo_id: str, *, revision: str | None, token: str | None, config_only: bool) -> Path:
    """Fetch config, tokenizer and safetensors (nothing else) into the normal HF cache."""
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return Path(huggingface_hub.snapshot_download(
            repo_id, revision=revision, token=token or os.environ.get("HF_TOKEN"),
            allow_patterns=["config.json"] if config_only else HUB_FILES))
    except GatedRepoError:
        reason = "it is gated: accept its licence on the Hub, then log in"
    except RepositoryNotFoundError:
        reason = "it does not exist or is private: check the id, or log in"
    except Exception as err:  # offline, DNS, HTTP errors: all mean "not reachable"
        reason = f"the Hub is not reachable ({type(err).__name__})"
    raise LlamaError(f"cannot download {repo_id!r}: {reason} (`huggingface-cli login` or HF_TOKEN=...), "
                    "or pass a local checkpoint directory")


def load_config(name_or_path: str | os.PathLike, *, revision: str | None = None,
                token: str | None = None) -> LlamaConfig:
    """The config of a preset, directory, GGUF or Hub id (downloading only config.json)."""
    preset = preset_config(str(name_or_path))
    if preset is not None:
        return preset
    directory = resolve_checkpoint(name_or_path, revision=revision, token=token, config_only=True)
    return LlamaConfig.from_json_file(directory / "config.json")


def checkpoint_files(directory: Path) -> list[Path]:
    """The safetensors shards of a checkpoint, from its index when it is sharded."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = [directory / f for f in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise LlamaError(f"{directory}: shard(s) {', '.join(missing)} listed in the index are missing")
        return files
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise LlamaError(f"{directory} has no *.safetensors weights")
    return files


def load_pretrained(name_or_path: str | os.PathLike, *, dtype: torch.dtype | None = None,
                    device: str | torch.device = "cpu", revision: str | None = None,
                    token: str | None = None) -> LlamaForCausalLM:
    """Build the model on `meta`, then read every tensor into `dtype` on `device`.

    `dtype=None` keeps the checkpoint's floating dtype (bf16 stays bf16).
    """
    directory = resolve_checkpoint(name_or_path, revision=revision, token=token)
    config = LlamaConfig.from_json_file(directory / "config.json")
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    unexpected, misshaped = [], []
    for path in checkpoint_files(directory):
        header, data_start = read_header(path)
        wanted = []
        for name, entry in header.items():
            if name not in expected:
                unexpected.append(name)
            elif tuple(entry["shape"]) != expected[name]:
                misshaped.append(f"{name} {tuple(entry['shape'])} != {expected[name]}")
            else:
                wanted.append(name)
        if unexpected or misshaped:
            break
        for name, tensor in iter_tensors(path, header, data_start, wanted):
            if dtype is None and tensor.is_floating_point():
                dtype = tensor.dtype
            state[name] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)
    optional = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = sorted(set(expected) - set(state) - optional)
    for problem, names in (("unexpected", unexpected), ("mis-shaped", misshaped), ("missing", missing)):
        if names:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            raise LlamaError(f"{directory}: {len(names)} {problem} tensor(s): {shown}")
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    model.model.rotary_emb.reset_parameters(device)
    return model.eval()


def load_tokenizer(name_or_path: str | os.PathLike, *, revision: str | None = None,
                   token: str | None = None) -> Tokenizer:
    """The tokenizer of a directory, GGUF or Hub id (same resolution as `load_pretrained`)."""
    return Tokenizer.from_directory(resolve_checkpoint(name_or_path, revision=revision, token=token))
