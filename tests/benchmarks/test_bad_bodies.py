"""The bad-body benchmark on a small body: every dialect refuses each bad value with a 422 and
takes the valid body."""

from __future__ import annotations

from pathlib import Path

import orjson

from benchmarks import bad_bodies


def test_each_bad_value_is_a_422_and_the_valid_body_passes(tmp_path: Path) -> None:
    assert bad_bodies.main(["--images", "3", "--rounds", "1", "--out", str(tmp_path)]) == 0
    rows = orjson.loads((tmp_path / "bad_bodies.json").read_bytes())
    assert {(row["dialect"], row["bad value"]) for row in rows} == {
        (dialect, kind) for dialect in bad_bodies.DECODERS for kind in bad_bodies.BAD_VALUES
    }
    for row in rows:
        assert row["outcome"] == ("ok" if row["bad value"] == "none (valid)" else "422"), row
    assert "| dialect |" in (tmp_path / "bad_bodies.md").read_text()
