"""HTTP plumbing in front of the adapters: the request edge, the route table, the prediction
fast path, keys, limits and request ids."""
