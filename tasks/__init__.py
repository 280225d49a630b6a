"""Task glue: what to cache from the frozen base, the loss, evaluation and zero-shot baselines."""
