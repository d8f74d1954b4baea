"""Model runtimes: one module per way of running a version's model file."""
