"""SST-2 and SQuAD from the official files to model-ready batches, and QA logits back to text.

Read in this order: `sst2` / `squad` (the file formats), `splits` (the seeded 80:20
protocol), `sources` (path, download or bundled sample -> train/test lists), `batching`
(length-sorted, token-budget batches), `qa_windows` (question + context windows
with answer labels) and `qa_answers` (logits -> answer strings).
"""
