"""Evaluation metrics written from their reference definitions, in standard-library Python.

Each module reproduces one reference implementation so our numbers can be compared
with published ones: `classification` (scikit-learn, 0..1), `squad` (the official
SQuAD v2.0/v1.1 scripts, 0..100), `bleu` (Hugging Face `evaluate`'s "bleu", 0..1) and
`rouge` (Google's `rouge-score`, 0..1). The reference packages are only needed by the
tests that prove the agreement. Import the module you need (`from metrics import squad`): the
package imports none of them, so reading a head class (count_params.py) loads no ROUGE or stemmer.
"""
