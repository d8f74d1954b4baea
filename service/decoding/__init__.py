"""Request decoders shared by every protocol adapter: pure functions from request data to arrays.

Each one either returns a checked float32 array or raises a :mod:`service.errors` client error
(400, 413, 415 or 422) whose message says exactly what is wrong and where.
"""

from service.decoding.images import ACCEPTED_IMAGE_TYPES, decode_image
from service.decoding.jsonbody import parse_json
from service.decoding.preprocess import Fit, fit_for_labels, preprocess_pil
from service.decoding.records import FeatureSpec, features_from_metadata, records_from_json
from service.decoding.tensors import images_from_json, to_array

__all__ = [
    "ACCEPTED_IMAGE_TYPES",
    "FeatureSpec",
    "Fit",
    "decode_image",
    "features_from_metadata",
    "fit_for_labels",
    "images_from_json",
    "parse_json",
    "preprocess_pil",
    "records_from_json",
    "to_array",
]
