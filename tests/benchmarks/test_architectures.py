"""The architecture benchmark's pieces: conversion, timing through LiteRT, the table."""

from __future__ import annotations

import keras
import numpy as np

from benchmarks import architectures


def _tiny() -> keras.Model:
    inputs = keras.Input(shape=(28, 28))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_both_modes_convert_and_time_a_model() -> None:
    model = _tiny()
    float_model = architectures.tflite_bytes(model, "float32")
    quantised = architectures.tflite_bytes(model, "dynamic")
    assert len(quantised) < len(float_model)  # int8 weights instead of float32
    timing = architectures.time_tflite(quantised, seconds=0.02)
    assert set(timing) == {"us_per_image_b1", "us_per_image_b16"}
    assert all(np.isfinite(v) and v > 0 for v in timing.values())


def test_markdown_has_a_row_per_measurement() -> None:
    rows = [
        {
            "model": "mnist",
            "recipe": "fast",
            "up_to": name,
            "mode": "dynamic",
            "parameters": 1234,
            "us_per_image_b1": 24.04,
            "us_per_image_b16": 19.8,
        }
        for name in ("conv2d", "whole model")
    ]
    table = architectures.markdown(rows)
    assert "| mnist | fast | conv2d | dynamic | 1,234 | 24.0 | 19.8 |" in table
    assert table.count("| mnist | fast |") == 2
