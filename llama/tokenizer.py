"""A thin wrapper over `tokenizers` that adds BOS the way the checkpoint asks and keeps offsets.

Special tokens are added here, not by the `tokenizer.json` post-processor, so single
texts, pairs and batches all follow one rule: `[bos if add_bos] + tokens`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tokenizers

from .errors import LlamaError


@dataclasses.dataclass
class Encoding:
    """Token ids with the character span each covers in its source text.

    `sequence_ids[i]` is 0 or 1 for a token of the first or second text of a pair,
    None for BOS; `offsets[i]` indexes into that text ((0, 0) for BOS).
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    sequence_ids: list[int | None]


class Tokenizer:
    """Encode/decode with an explicit BOS policy and a pad id even when the checkpoint has none."""

    def __init__(self, backend: tokenizers.Tokenizer, *, bos_id: int | None, eos_ids: list[int],
                 pad_id: int | None, add_bos: bool) -> None:
        self.backend = backend
        self.bos_id = bos_id
        self.eos_ids = eos_ids
        self.add_bos = add_bos and bos_id is not None
        # Padding is always masked, so any id works; prefer the checkpoint's, then EOS.
        self.pad_id = pad_id if pad_id is not None else (eos_ids[0] if eos_ids else 0)

    @classmethod
    def from_directory(cls, directory: str | Path) -> "Tokenizer":
        """Read `tokenizer.json`, `tokenizer_config.json` and `config.json` of a checkpoint."""
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise LlamaError(f"{path} not found: the checkpoint has no tokenizer.json")
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            raise LlamaError(f"{path} could not be read as a tokenizer ({err})") from None
        tok_config = _read_json(directory / "tokenizer_config.json")
        model_config = _read_json(directory / "config.json")

        def token_id(key: str) -> int | None:
            if isinstance(model_config.get(f"{key}_token_id"), int):
                return model_config[f"{key}_token_id"]
            token = tok_config.get(f"{key}_token")
            token = token.get("content") if isinstance(token, dict) else token
            return backend.token_to_id(token) if token else None

        bos_id = token_id("bos")
        eos = model_config.get("eos_token_id")
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if not eos_ids and token_id("eos") is not None:
            eos_ids = [token_id("eos")]
        add_bos = tok_config.get("add_bos_token")
        if add_bos is None:  # Llama 3 says it only through the post-processor template.
            add_bos = bos_id is not None and backend.encode("a").ids[:1] == [bos_id]
        return cls(backend, bos_id=bos_id, eos_ids=eos_ids, pad_id=token_id("pad"), add_bos=add_bos)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def _prefix(self, add_bos: bool | None) -> list[int]:
        use = self.add_bos if add_bos is None else add_bos
        return [self.bos_id] if use and self.bos_id is not None else []

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        return self._prefix(add_bos) + self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str], add_bos: bool | None = None) -> list[list[int]]:
        prefix = self._prefix(add_bos)
        return [prefix + e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def encode_with_offsets(self, text: str, add_bos: bool | None = None) -> Encoding:
        enc = self.backend.encode(text, add_special_tokens=False)
        prefix = self._prefix(add_bos)
        return Encoding(prefix + enc.ids, [(0, 0)] * len(prefix) + list(enc.offsets),
                        [None] * len(prefix) + [0] * len(enc.ids))

    def encode_pair(self, first: str, second: str, add_bos: bool | None = None) -> Encoding:
        """`[bos] first second`, each text tokenised on its own, offsets into its own text."""
        a, b = self.backend.encode_batch([first, second], add_special_tokens=False)
        prefix = self._prefix(add_bos)
        return Encoding(prefix + a.ids + b.ids,
                        [(0, 0)] * len(prefix) + list(a.offsets) + list(b.offsets),
                        [None] * len(prefix) + [0] * len(a.ids) + [1] * len(b.ids))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LlamaError(f"{path} is not valid JSON ({err})") from None
