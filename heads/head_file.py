"""head.safetensors: a head's tensors and what using them needs, readable without the training side.

Metadata keys (all strings, as safetensors stores them):

    task                 the task the head was trained for ("sst2", "squad")
    base_model           the base it reads: a Hub id, a local path or a preset name (smollm2-135m)
    base_revision        the base's Hub revision, "" when none was given
    base_config_sha256   `config_fingerprint` of the base's architecture
    base_dtype           the dtype the frozen pass ran in ("bfloat16", "float32"); reusing it reproduces the run
    label_names          JSON: what the head's output rows mean
    readout              JSON: the `heads.readout` record the head reads (block, echo, pool)
    use                  JSON: the settings a user of the head applies as training did (SQuAD: max_length,
                         doc_stride, no_answer_threshold, null for a head that never abstains)
    decision             JSON: the prediction rule's settings chosen on validation (eval.py applies them)
    transformers_class   the transformers class that reproduces the head's logits, "" when none does

Older head files spelt the readout `layer`, SST-2's echo as `pool: "echo"`, and had a `lookahead`;
`read_head_file` reads them too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open

from errors import UserError
from llama import LlamaConfig
from llama.loading import REPO_ID

from .readout import ClassifierReadout, SpanReadout

HEAD_FILE = "head.safetensors"
NOT_ARCHITECTURE = ("torch_dtype", "bos_token_id", "eos_token_id", "pad_token_id")
HEAD_TENSOR_PREFIXES = {"score.": ClassifierReadout, "qa_outputs.": SpanReadout}
TRANSFORMERS_CLASSES = {ClassifierReadout: "LlamaForSequenceClassification", SpanReadout: "LlamaForQuestionAnswering"}


def config_fingerprint(config: LlamaConfig) -> str:
    """A short hash of the base's architecture (not its storage dtype or special-token ids).

    A head only fits hidden states of the shape and kind it was trained on; two checkpoints
    of one architecture (a base model and its instruct tune) share a fingerprint, so users of
    a head also compare the base model names and warn when they differ.
    """
    fields = {k: v for k, v in config.to_dict().items() if k not in NOT_ARCHITECTURE}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def transformers_class(readout: ClassifierReadout | SpanReadout, depth: int) -> str:
    """The transformers class whose logits equal the head's on the same tokens, or "" when none does.

    LlamaForSequenceClassification reads the last token after the last block; LlamaForQuestionAnswering
    every token after the last block. A head trained on another block, or on an echoed copy, loads
    into them without an error and computes something else.
    """
    standard = readout.block == depth and not readout.echo
    if isinstance(readout, ClassifierReadout):
        standard = standard and readout.pool == "last"
    return TRANSFORMERS_CLASSES[type(readout)] if standard else ""


@dataclasses.dataclass
class HeadFile:
    """A head file's tensors and metadata, decoded."""

    path: Path
    tensors: dict[str, torch.Tensor]
    task: str
    base_model: str
    base_revision: str | None
    base_config_sha256: str
    base_dtype: str | None  # None in head files written before it was recorded
    label_names: list[str]
    readout: ClassifierReadout | SpanReadout
    use: dict
    decision: dict
    transformers_class: str | None  # None in head files written before it was recorded

    def check_base(self, config: LlamaConfig) -> None:
        """Refuse a base of another architecture than the one the head was trained on, in one line."""
        if self.base_config_sha256 != config_fingerprint(config):
            raise UserError(f"{self.path} was trained on base model {self.base_model!r}, whose architecture "
                            f"differs from the base given: use that base (the default when none is given)")


def locate_head(head: str | Path, token: str | None = None) -> Path:
    """A run directory as is; a Hub repo id downloaded (the head file and its JSON only)."""
    path = Path(head).expanduser()
    if path.is_dir() or not REPO_ID.match(str(head)):
        return path
    import huggingface_hub

    try:
        return Path(huggingface_hub.snapshot_download(str(head), allow_patterns=[HEAD_FILE, "*.json"], token=token))
    except Exception as err:  # offline, missing, gated: one line either way
        raise UserError(f"cannot download the head {head!r} ({type(err).__name__}); pass the run's local "
                        "directory, or log in (`huggingface-cli login` or HF_TOKEN=...)") from None


def head_kind(tensors: dict) -> type:
    """ClassifierReadout or SpanReadout: which kind of head the tensor names belong to."""
    kinds = {kind for prefix, kind in HEAD_TENSOR_PREFIXES.items() if any(k.startswith(prefix) for k in tensors)}
    if len(kinds) != 1:
        raise ValueError(f"tensors {sorted(tensors)} are not those of one head")
    return kinds.pop()


def read_head_file(location: str | Path) -> HeadFile:
    """Read a head file (or the run directory holding one), refusing one that is not a head of this project."""
    path = Path(location)
    if path.is_dir():
        path = path / HEAD_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: pass the output directory of a train.py run (or a Hub repo it was "
                        "pushed to)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own errors for a truncated or foreign file
        raise UserError(f"{path} is not a readable safetensors file ({err}); retrain or download it again") from None
    try:
        kind = head_kind(tensors)
    except ValueError:
        kind = None
    if kind is None or "readout" not in metadata or "task" not in metadata:
        raise UserError(f"{path} is not a head written by train.py (tensors {sorted(tensors)}, "
                        f"metadata keys {sorted(metadata)})")
    fields = json.loads(metadata["readout"])
    readout = readout_from_fields(kind, fields, path)
    use = json.loads(metadata.get("use", "{}"))
    decision = json.loads(metadata.get("decision", "{}"))
    if "use" not in metadata and "no_answer_threshold" in decision:  # older files: the chosen threshold
        use = {"no_answer_threshold": decision["no_answer_threshold"]}
    return HeadFile(path=path, tensors=tensors, task=metadata["task"], base_model=metadata.get("base_model", ""),
                    base_revision=metadata.get("base_revision") or None,
                    base_config_sha256=metadata.get("base_config_sha256", ""),
                    base_dtype=metadata.get("base_dtype") or None,
                    label_names=json.loads(metadata.get("label_names", "[]")), readout=readout, use=use,
                    decision=decision, transformers_class=metadata.get("transformers_class"))


def readout_from_fields(kind: type, fields: dict, path: Path) -> ClassifierReadout | SpanReadout:
    """The readout record from the file's JSON, in today's spelling or the older one."""
    if fields.get("lookahead"):
        raise UserError(f"{path} reads its end logits one token ahead (lookahead), which this version no longer "
                        "computes; retrain the head without --lookahead")
    block = int(fields["block"] if "block" in fields else fields["layer"])
    if kind is SpanReadout:
        return SpanReadout(block, bool(fields["echo"]))
    pool = str(fields["pool"])
    echo = bool(fields.get("echo", pool == "echo"))
    return ClassifierReadout(block, echo, "mean" if pool == "echo" else pool)


def read_head_task(location: str | Path) -> str | None:
    """Only the `task` a head file names (None when there is no such file), read without its tensors."""
    path = Path(location) / HEAD_FILE if Path(location).is_dir() else Path(location)
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("task")
