"""A readable Llama-3.x in plain PyTorch, loading Hub checkpoints as they are."""

from .chat import chat_prompt
from .config import PRESETS, LlamaConfig
from .errors import LlamaError
from .generate import generate
from .kv_cache import KVCache
from .loading import load_config, load_pretrained, load_tokenizer, resolve_checkpoint
from .model import LlamaForCausalLM, LlamaModel
from .tokenizer import Encoding, Tokenizer

__all__ = ["PRESETS", "Encoding", "KVCache", "LlamaConfig", "LlamaError", "LlamaForCausalLM", "LlamaModel", "Tokenizer",
           "chat_prompt", "generate", "load_config", "load_pretrained", "load_tokenizer", "resolve_checkpoint"]
