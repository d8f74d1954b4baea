"""The non-digit probe: seeded pictures of every kind, and how answers are sorted and summed."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.photos import nondigits as nd


def _data() -> nd.TestSets:
    x = np.zeros((20, 28, 28), np.uint8)
    x[:, 5:23, 12:16] = 255
    labels = np.arange(20) % 10
    return (x, labels), (x.copy(), labels.copy())


def test_every_kind_is_drawn_from_the_seed_alone() -> None:
    first = nd.draw(3, 24, _data())
    again = nd.draw(3, 24, _data())
    other = nd.draw(4, 24, _data())
    for name in ("mnist", "fashion_mnist"):
        assert [it["data"] for it in first[name]] == [it["data"] for it in again[name]]
    assert [it["data"] for it in first["mnist"]] != [it["data"] for it in other["mnist"]]
    kinds = {it["kind"] for it in first["mnist"] if not it["inside"]}
    assert kinds == set(nd.NON_DIGIT_KINDS)
    inside = [it for it in first["mnist"] if it["inside"]]
    assert len(inside) == len(first["mnist"]) // 2 and {it["kind"] for it in inside} == {"digit"}
    for it in first["mnist"] + first["fashion_mnist"]:
        with Image.open(io.BytesIO(it["data"])) as img:
            img.load()
            assert min(img.size) >= 28


def test_the_pools_hold_what_their_kind_says() -> None:
    assert not set(nd.CLEAR_LETTERS) & set(nd.DIGIT_LIKE_LETTERS)
    assert not any(ch.isdigit() for pool in nd.POOLS.values() for word in pool for ch in word)
    assert set(nd.POOLS) == set(nd.NON_DIGIT_KINDS) - {"garment"}


def test_refusals_are_told_apart_by_their_message() -> None:
    nothing = "no digit found in the image: nothing stands out from its background (...)"
    several = "the picture holds 3 separate marks side by side, as a number of 3 digits"
    assert nd.refusal(nothing) == "nothing found"
    assert nd.refusal(nothing.replace("digit", "item")) == "nothing found"
    assert nd.refusal(several) == "several"
    assert nd.refusal("the image is too large") == "other"


def _item(kind: str, inside: bool, score: float, flag: bool, top: float) -> dict[str, Any]:
    answer = {"status": 200, "version": 3, "label": "4", "top": top, "score": score, "flag": flag}
    item = {"kind": kind, "what": kind, "inside": inside, "answer": answer}
    item["outcome"] = nd.outcome(answer)
    return item


def test_summary_sorts_answers_and_keeps_digit_like_letters_apart() -> None:
    items = [_item("digit", True, 0.1 * i, i == 9, 0.99) for i in range(10)]
    items += [
        _item("letter", False, 5.0, True, 0.5),
        _item("letter", False, 0.15, False, 0.999),
        _item("letter-digit-like", False, 0.05, False, 0.999),
        {"kind": "word", "what": "hello", "inside": False, "outcome": "refused: several",
         "answer": {"status": 422, "refused": "several", "detail": "..."}},
    ]  # fmt: skip
    s = nd.summarise("mnist", items)
    assert s["own_flagged"] == 0.1 and s["version"] == 3
    clear = s["clear_non_digits"]
    assert (clear["n"], clear["flagged"], clear["confident, unflagged"]) == (3, 1, 1)
    assert clear["refused: several"] == 1 and clear["answered"] == 2
    # the flagged letter outranks all 10 digits, the other one 2 (0.0 and 0.1): (10 + 2) / 20
    assert clear["auroc"] == 0.6
    assert s["kinds"]["letter-digit-like"]["confident, unflagged"] == 1
    assert s["passed_unflagged"] == ["letter:letter->4"]
    assert "| letter-digit-like | 1 |" in nd.markdown({"seed": 1, "models": {"mnist": s}})
