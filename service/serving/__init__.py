"""The serving core: model versions and their tasks, the registry that loads and swaps them, the
micro-batcher, and the one prediction path every adapter calls."""
