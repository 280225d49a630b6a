"""Head-only training on cached frozen features: the feature store, the loop, the outputs."""
