"""QA windows and answer extraction: layout, overlap, labels, post-processing, real-data round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, pre_tokenizers, trainers

from data.qa_answers import answer_questions
from data.qa_windows import QAWindow, make_windows
from data.squad import QAExample
from errors import UserError
from llama import Tokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
SENTENCES = ["The Normans were the people who gave their name to Normandy, a region in France.",
             "Japanese and Japan are words; the Japanese team won the final in 1998.",
             "Rollo, a Viking leader, swore fealty to King Charles III of West Francia."]


def bpe_tokenizer(bos: bool = True) -> Tokenizer:
    """A small byte-level BPE (the kind Llama 3 and SmolLM2 use), trained on SENTENCES."""
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(SENTENCES * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return Tokenizer(backend, bos_id=1 if bos else None, eos_ids=[2], pad_id=0, add_bos=False)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return bpe_tokenizer()


def example(qid: str, context: str, answer: str | None, question: str = "Who gave their name?",
            occurrence: int = 0) -> QAExample:
    if answer is None:
        return QAExample(qid, "t", question, context, [], [], True)
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return QAExample(qid, "t", question, context, [answer], [start], False)


def labelled_text(ex: QAExample, f: QAWindow) -> str:
    return ex.context[f.offsets[f.start_position][0]:f.offsets[f.end_position][1]].strip()


def test_layout_is_no_answer_slot_question_newline_then_context(tok):
    ex = example("q", SENTENCES[0], "The Normans", question="  Who were they? ")
    [f] = make_windows([ex], tok)
    question, newline = tok.encode("Who were they?"), tok.encode("\n")
    prefix = 1 + len(question) + len(newline)
    assert f.input_ids[:prefix] == [tok.bos_id] + question + newline
    assert f.offsets[:prefix] == [None] * prefix
    assert tok.decode(f.input_ids[prefix:]) == ex.context
    assert f.input_ids[prefix:] == tok.encode_with_offsets(ex.context, add_bos=False).ids
    assert (f.start_position, f.end_position) != (0, 0) and labelled_text(ex, f) == "The Normans"
    [g] = make_windows([ex], bpe_tokenizer(bos=False))
    assert g.input_ids[0] == 0  # no BOS: the pad id holds the no-answer slot


def test_windows_overlap_by_doc_stride_and_cover_every_context_token(tok):
    context = " ".join(SENTENCES * 12)
    ex = example("q", context, "Rollo", occurrence=7)
    windows = make_windows([ex], tok, max_length=64, doc_stride=16, max_question_tokens=16)
    n_context = len(tok.encode(context))
    assert all(len(f.input_ids) <= 64 for f in windows)
    spans = [[o for o in f.offsets if o is not None] for f in windows]
    assert len(spans) > 5
    for previous, current in zip(spans, spans[1:]):
        assert previous[-16:] == current[:16]  # exactly doc_stride tokens shared
    assert sum(len(w) for w in spans) - 16 * (len(spans) - 1) == n_context
    assert spans[0][0][0] == 0 and spans[-1][-1][1] == len(context)


def test_labels_point_at_the_answer_in_its_windows_and_at_the_slot_elsewhere(tok):
    context = " ".join(SENTENCES * 12)
    ex = example("q", context, "King Charles III of West Francia", occurrence=5)
    windows = make_windows([ex, example("u", context, None)], tok, max_length=64, doc_stride=24, max_question_tokens=16)
    answered = [f for f in windows if f.example_id == "q" and f.start_position]
    assert answered and all(labelled_text(ex, f) == ex.answers[0] for f in answered)
    for f in windows:
        if f.example_id == "u" or not f.start_position:
            assert (f.start_position, f.end_position) == (0, 0)
        else:
            assert ex.answer_starts[0] in range(*f.offsets[f.start_position])


def test_target_prefers_a_reference_its_tokens_cover_exactly(tok):
    context = SENTENCES[1]
    start = context.index("Japanese team")
    assert [t for t in tok.backend.encode(context).tokens if "Japanese" in t]  # one token
    ex = QAExample("q", "t", "Which team?", context, ["Japan", "Japanese"], [start, start], False)
    [f] = make_windows([ex], tok)
    assert labelled_text(ex, f) == "Japanese"


def test_a_long_question_is_cut_so_the_context_keeps_room(tok):
    ex = example("q", SENTENCES[2], "Rollo", question=" ".join(SENTENCES * 3))
    [f] = make_windows([ex], tok, max_length=200, doc_stride=64, max_question_tokens=64)
    assert sum(o is None for o in f.offsets) == 1 + 64 + len(tok.encode("\n"))
    with pytest.raises(UserError, match="raise max_length or lower doc_stride"):
        make_windows([ex], tok, max_length=150, doc_stride=128)


def assert_echo_of(plain: QAWindow, echoed: QAWindow, tok: Tokenizer) -> None:
    """`echoed` = plain's window, a blank line, then plain's body again, labels moved into that copy."""
    blank = tok.encode("\n\n")
    shift = len(plain.input_ids) - 1 + len(blank)  # where the second copy's question starts, minus 1
    assert echoed.example_id == plain.example_id
    assert echoed.input_ids == plain.input_ids + blank + plain.input_ids[1:]
    assert echoed.offsets == [None] * (len(plain.input_ids) + len(blank)) + plain.offsets[1:]
    if (plain.start_position, plain.end_position) == (0, 0):
        assert (echoed.start_position, echoed.end_position) == (0, 0)
    else:
        assert (echoed.start_position, echoed.end_position) == (plain.start_position + shift,
                                                                plain.end_position + shift)


def test_echo_layout_repeats_question_and_window_after_a_blank_line_and_labels_the_second_copy(tok):
    ex = example("q", SENTENCES[0], "The Normans", question="  Who were they? ")
    [plain], [f] = make_windows([ex], tok), make_windows([ex], tok, echo=True)
    assert_echo_of(plain, f, tok)
    body = tok.encode("Who were they?") + tok.encode("\n") + tok.encode(ex.context)
    assert f.input_ids == [tok.bos_id] + body + tok.encode("\n\n") + body
    first_copy = len(f.input_ids) - len(tok.encode(ex.context))
    assert all(o is None for o in f.offsets[:first_copy]) and None not in f.offsets[first_copy:]
    assert f.start_position >= first_copy and labelled_text(ex, f) == "The Normans"


def test_echo_cuts_the_same_windows_as_plain_with_max_length_counting_one_copy(tok):
    context = " ".join(SENTENCES * 12)
    examples = [example("q", context, "King Charles III of West Francia", occurrence=5), example("u", context, None)]
    settings = dict(max_length=64, doc_stride=24, max_question_tokens=16)
    plain, echoed = make_windows(examples, tok, **settings), make_windows(examples, tok, echo=True, **settings)
    assert len(echoed) == len(plain) > 5
    for p, e in zip(plain, echoed):
        assert_echo_of(p, e, tok)
        blank = len(tok.encode("\n\n"))
        assert len(e.input_ids) == 2 * len(p.input_ids) - 1 + blank <= 2 * 64 - 1 + blank
    answered = [f for f in echoed if f.start_position]
    assert answered and all(labelled_text(examples[0], f) == examples[0].answers[0] for f in answered)


def test_answers_of_echoed_windows_come_from_the_second_copy_only(tok):
    ex = example("q", SENTENCES[0], "Normandy")
    [f] = make_windows([ex], tok, echo=True)
    first_copy = len(f.input_ids) - len(tok.encode(ex.context))
    starts, ends = logits_for([f], {0: (f.start_position, f.end_position, 3.0)})
    starts[0][1:first_copy] = ends[0][1:first_copy] = 50.0  # the question and first copy can never be chosen
    predictions, _ = answer_questions([ex], [f], starts, ends)
    assert predictions == {"q": "Normandy"}


def logits_for(windows: list[QAWindow], spans: dict[int, tuple[int, int, float]], null: float = 0.0,
               rest: float = -5.0):
    """Start/end logits: `rest` everywhere, `null` at the slot, `score` at each window's chosen span."""
    starts, ends = [], []
    for i, f in enumerate(windows):
        s, e = np.full(len(f.input_ids), rest), np.full(len(f.input_ids), rest)
        s[0] = e[0] = null
        if i in spans:
            first, last, score = spans[i]
            s[first] = e[last] = score
        starts.append(s)
        ends.append(e)
    return starts, ends


def context_position(f: QAWindow, ex: QAExample, text: str) -> tuple[int, int]:
    first = ex.context.index(text)
    positions = [i for i, o in enumerate(f.offsets) if o and o[1] > first and o[0] < first + len(text)]
    return positions[0], positions[-1]


def test_best_span_over_windows_is_the_exact_context_substring(tok):
    context = " ".join(SENTENCES * 6)
    ex = example("q", context, "King Charles III", occurrence=0)
    windows = make_windows([ex], tok, max_length=64, doc_stride=16, max_question_tokens=16)
    target = next(i for i, f in enumerate(windows) if f.start_position)
    first, last = context_position(windows[target], ex, "King Charles III")
    other = (target + 1) % len(windows)
    decoy = [i for i, o in enumerate(windows[other].offsets) if o][:2]
    starts, ends = logits_for(windows, {target: (first, last, 4.0), other: (decoy[0], decoy[1], 3.0)})
    predictions, probs = answer_questions([ex], windows, starts, ends)
    assert predictions == {"q": "King Charles III"}
    assert probs["q"] == pytest.approx(1 / (1 + math.exp(-(0.0 - 8.0))))


def test_spans_outside_the_context_reversed_or_too_long_are_never_chosen(tok):
    ex = example("q", SENTENCES[0], "Normandy")
    [f] = make_windows([ex], tok)
    first, last = context_position(f, ex, "Normandy")
    starts, ends = logits_for([f], {0: (first, last, 2.0)}, rest=-100.0)
    starts[0][1], ends[0][1] = 50.0, 50.0  # a question token
    starts[0][last + 1], ends[0][first - 1] = 40.0, 40.0  # end before start
    starts[0][f.offsets.index(next(o for o in f.offsets if o))] = 30.0  # start too far from any end
    predictions, _ = answer_questions([ex], [f], starts, ends, max_answer_length=last - first + 1)
    assert predictions == {"q": "Normandy"}


def test_no_answer_when_the_null_score_wins_by_more_than_the_threshold(tok):
    ex = example("q", SENTENCES[0], "Normandy")
    windows = make_windows([ex], tok)
    first, last = context_position(windows[0], ex, "Normandy")
    starts, ends = logits_for(windows, {0: (first, last, 3.0)}, null=5.0)  # null 10 vs span 6
    assert answer_questions([ex], windows, starts, ends)[0] == {"q": "Normandy"}  # v1.1: never ""
    predictions, probs = answer_questions([ex], windows, starts, ends, allow_no_answer=True)
    assert predictions == {"q": ""} and probs["q"] == pytest.approx(1 / (1 + math.exp(-4.0)))
    lenient = answer_questions([ex], windows, starts, ends, allow_no_answer=True, null_threshold=4.5)
    assert lenient[0] == {"q": "Normandy"}
    starts[0][first] = 2000.0  # far beyond exp()'s range: the probability saturates, never overflows
    assert answer_questions([ex], windows, starts, ends)[1] == {"q": 0.0}


def test_null_score_is_the_smallest_over_a_questions_windows(tok):
    context = " ".join(SENTENCES * 6)
    ex = example("q", context, "Rollo", occurrence=3)
    windows = make_windows([ex], tok, max_length=64, doc_stride=16, max_question_tokens=16)
    target = next(i for i, f in enumerate(windows) if f.start_position)
    first, last = windows[target].start_position, windows[target].end_position
    starts, ends = logits_for(windows, {target: (first, last, 3.0)}, null=9.0)
    starts[target][0] = ends[target][0] = 0.0  # the window holding the answer sees no reason for ""
    predictions, probs = answer_questions([ex], windows, starts, ends, allow_no_answer=True)
    assert predictions == {"q": "Rollo"} and probs["q"] < 0.5


def test_padded_torch_logits_give_the_same_answers_as_numpy_rows(tok):
    examples = [example("a", SENTENCES[0], "Normandy"), example("b", SENTENCES[2], "Rollo")]
    windows = make_windows(examples, tok)
    rng = np.random.default_rng(0)
    starts = [rng.normal(size=len(f.input_ids)) for f in windows]
    ends = [rng.normal(size=len(f.input_ids)) for f in windows]
    width = max(len(f.input_ids) for f in windows) + 3
    padded = [torch.full((len(windows), width), float("-inf")) for _ in range(2)]
    for i in range(len(windows)):
        padded[0][i, : len(starts[i])] = torch.tensor(starts[i])
        padded[1][i, : len(ends[i])] = torch.tensor(ends[i])
    expected = answer_questions(examples, windows, starts, ends, allow_no_answer=True)
    got = answer_questions(examples, windows, padded[0].bfloat16(), padded[1], allow_no_answer=True)
    assert got[0] == expected[0]
    assert got[1] == pytest.approx(expected[1], abs=0.02)  # bf16 rounding of the logits


def test_zero_width_offsets_from_a_faulty_tokenizer_are_refused(tok, monkeypatch):
    real = tok.backend.encode_batch

    class Broken:  # what some tokenizers versions returned for Llama-3: every span empty
        def __init__(self, enc):
            self.ids, self.offsets = enc.ids, [(s, s) for s, _ in enc.offsets]

    def broken_encode_batch(texts, add_special_tokens=False):
        return [Broken(e) for e in real(texts, add_special_tokens=add_special_tokens)]

    class BrokenBackend:
        encode_batch = staticmethod(broken_encode_batch)

        def __getattr__(self, name):
            return getattr(real.__self__, name)

    monkeypatch.setattr(tok, "backend", BrokenBackend())
    with pytest.raises(UserError, match="zero-width"):
        make_windows([example("q1", SENTENCES[0], "Normans")], tok)
