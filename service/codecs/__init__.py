"""Pure codecs: request and response bytes or JSON to numpy arrays and back, for each protocol.

Nothing here knows about HTTP frameworks or models; bad input raises a ``service.errors``
client error that says what is wrong and where.
"""
