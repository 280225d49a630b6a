"""ChatML, the turn format of instruct models such as SmolLM2: the prompt that asks for a reply.

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n

The markers are special tokens (one id each), and the model ends its reply with
`<|im_end|>`, its EOS, so `generate` stops there by default.
"""

from __future__ import annotations


def chat_prompt(user: str, system: str | None = None) -> str:
    """One user turn (after an optional system turn), ending where the assistant's reply begins."""
    turns = ([("system", system)] if system is not None else []) + [("user", user)]
    body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)
    return body + "<|im_start|>assistant\n"
