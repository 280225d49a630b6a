"""Echoed SQuAD windows cache only what the head reads: the no-answer slot and the second copy's context.

The cache then holds about half of each window's states, and the head's answers must be exactly
those it gives when it scores every position of the full windows.
"""

from __future__ import annotations

import dataclasses

import torch

import llama
from data.qa_answers import answer_questions
from data.sources import load_task_data
from heads import QuestionAnswerer
from tasks import TASKS, ReadoutChoice


def test_echo_windows_cache_half_the_states_and_answer_as_the_full_windows_do(tiny):
    task = dataclasses.replace(TASKS["squad"], squad_version="2.0", max_length=160, doc_stride=48)
    _, examples = load_task_data(task.data_format, "sample", "holdout", seed=1, eval_limit=16)
    lm = llama.load_pretrained(str(tiny), dtype=torch.float32)
    tokenizer = llama.load_tokenizer(str(tiny))
    torch.manual_seed(0)
    qa = QuestionAnswerer(lm.config, backbone=lm.model)
    (readout,) = task.readouts(ReadoutChoice(block="last", echo=True), lm.config)
    prepared = task.prepare(tokenizer, examples, [readout], batch_tokens=2048)
    assert sum(prepared.cached_lengths) < 0.6 * sum(prepared.lengths)
    for view, window in zip(prepared.views, prepared.windows):  # the labels point at the same tokens
        kept = [0] + [i for i, span in enumerate(window.offsets) if span is not None]
        assert kept[view.start_position] == window.start_position and kept[view.end_position] == window.end_position
    predictions = task.predict(qa, task.frozen_pass(qa, prepared, [readout], "ram", "test"), examples)

    starts, ends = [], []
    with torch.no_grad():
        for window in prepared.windows:  # every position of the full window, one at a time
            ids = torch.tensor([window.input_ids])
            hidden = qa.states(ids, torch.ones_like(ids)).to(torch.bfloat16).float()  # as the cache rounds
            s, e = qa.span_logits(hidden, torch.ones_like(ids))
            starts.append(s[0].numpy())
            ends.append(e[0].numpy())
    answers, no_answer = answer_questions(examples, prepared.windows, starts, ends)  # the best spans
    assert [p["text"] for p in predictions] == [answers[e.id] for e in examples]
    for p, e in zip(predictions, examples):
        assert abs(p["no_answer_prob"] - no_answer[e.id]) < 1e-4
