"""Photos and drawings: a labelled evaluation set (``generate``) and its harness
(``evaluate``)."""
