"""Pure codecs for the standard protocols (TF Serving REST, Open Inference Protocol V2).

Nothing here knows about HTTP frameworks or models: each function turns bytes or decoded JSON into
numpy arrays (or back), and raises a `service.errors.ServeError` subclass for any bad input.
"""
