"""A readable Llama-3.x in plain PyTorch, loading Hub checkpoints as they are."""

from .config import PRESETS, LlamaConfig
from .kv_cache import KVCache
from .loading import load_config, load_pretrained, load_tokenizer, resolve_checkpoint
from .model import LlamaForCausalLM, LlamaModel
from .tokenizer import Encoding, Tokenizer

__all__ = ["PRESETS", "Encoding", "KVCache", "LlamaConfig", "LlamaForCausalLM", "LlamaModel",
           "Tokenizer", "load_config", "load_pretrained", "load_tokenizer", "resolve_checkpoint"]

from .chat import chat_prompt  # noqa: E402
from .generate import generate  # noqa: E402

__all__ += ["chat_prompt", "generate"]
