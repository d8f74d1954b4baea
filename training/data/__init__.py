"""Data loaders for MNIST, Fashion-MNIST and Pima: sources, integrity checks and cache.

The public API is re-exported by :mod:`training.datasets`.
"""
