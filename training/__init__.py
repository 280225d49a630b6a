"""Head-only training on cached frozen states: the plan of the cache, the loop, the outputs."""
