"""A labelled, reproducible set of photographed and drawn digits and clothes, and its harness.

``python -m benchmarks.photoset.generate`` writes the pictures and ``manifest.json`` to a cache
folder; ``python -m benchmarks.photoset.evaluate`` runs every trained image version on them through
the service's own decoding, against a plain MNIST-style baseline, and measures the OOD scores.
"""
