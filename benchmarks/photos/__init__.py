"""Photos and drawings: a labelled evaluation set (``generate``), its harness (``evaluate``) and a
prototype preprocessing for real pictures (``prototype``)."""
