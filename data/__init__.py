"""SST-2, SQuAD and your own files to model-ready batches, and QA logits back to text.

Read in this order: `sst2` / `squad` (the file formats), `labelled` / `qa_jsonl` (your own
CSV / TSV / JSONL, and SQuAD in the Hugging Face layout), `splits` (the seeded 80:20
protocol), `sources` (path, download or bundled sample -> train/test lists), `batching`
(length-sorted, token-budget batches), `qa_windows` (question + context windows
with answer labels) and `qa_answers` (logits -> answer strings).
"""
