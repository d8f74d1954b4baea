"""The Python client and the ``predict`` command against a real server on trained models.

Expected answers come from each version's golden sample in ``metadata.json``: real test inputs
and the probabilities the exported model gives for them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.client import Client, ClientError, cli
from tests.helpers.live_server import ROOT, Server, run_server
from training.specs import PIMA_FEATURE_SPECS, PIMA_LABEL_NAMES

pytestmark = pytest.mark.integration


def _metadata(models_dir: Path, name: str) -> dict[str, Any]:
    versions = sorted(
        int(p.parent.name)
        for p in (models_dir / name).glob("*/metadata.json")
        if p.parent.name.isdigit()
    )
    meta: dict[str, Any] = json.loads(
        (models_dir / name / str(versions[-1]) / "metadata.json").read_text()
    )
    return meta


def _golden(models_dir: Path, name: str) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    meta = _metadata(models_dir, name)
    inputs = np.asarray(meta["golden"]["inputs"], dtype=np.float32)
    outputs = np.asarray(meta["golden"]["outputs"], dtype=np.float32)
    return meta, inputs, outputs


def _png(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L").save(path, format="PNG")
    return path


@pytest.fixture
def client(server: Server) -> Client:
    return Client(server.url, timeout=30)


def test_status_endpoints(client: Client) -> None:
    assert client.ready() is True
    assert client.health()
    models = {m["name"]: m for m in client.models()}
    assert {"mnist", "fashion_mnist", "pima"} <= set(models)
    for model in models.values():
        assert model["default_version"] is not None
        assert any(v["state"] == "available" for v in model["versions"])


def test_predict_array_matches_golden(client: Client, models_dir: Path) -> None:
    for name in ("mnist", "fashion_mnist"):
        meta, inputs, outputs = _golden(models_dir, name)
        result = client.predict(name, inputs, version=meta["version"])
        assert result["model"] == name and result["version"] == meta["version"]
        got = np.array(
            [[p["probabilities"][label] for label in meta["labels"]] for p in result["predictions"]]
        )
        np.testing.assert_allclose(got, outputs, atol=1e-3)
        assert [p["label"] for p in result["predictions"]] == [
            meta["labels"][i] for i in outputs.argmax(1)
        ]
        # integer pixels (0-255) are sent with scale=byte and give the same answer
        as_bytes = client.predict(
            name, np.round(inputs[:2] * 255).astype(np.uint8), version=meta["version"]
        )
        assert [p["label"] for p in as_bytes["predictions"]] == [
            meta["labels"][i] for i in outputs[:2].argmax(1)
        ]


def test_predict_png_file_bytes_and_multipart(
    client: Client, models_dir: Path, tmp_path: Path
) -> None:
    meta, inputs, outputs = _golden(models_dir, "mnist")
    expected = [meta["labels"][i] for i in outputs.argmax(1)]
    paths = [_png(inputs[i], tmp_path / f"digit{i}.png") for i in range(3)]
    by_path = client.predict("mnist", paths[0], version=meta["version"], top_k=3)
    assert by_path["predictions"][0]["label"] == expected[0]
    assert len(by_path["predictions"][0]["top_k"]) == 3
    by_bytes = client.predict("mnist", paths[1].read_bytes(), version=meta["version"])
    assert by_bytes["predictions"][0]["label"] == expected[1]
    many = client.predict("mnist", [str(p) for p in paths], version=meta["version"])
    assert [p["label"] for p in many["predictions"]] == expected[:3]
    # JPEG of the same digit: lossy, but the label holds
    buf = io.BytesIO()
    Image.open(paths[2]).save(buf, format="JPEG", quality=95)
    assert (
        client.predict("mnist", buf.getvalue(), version=meta["version"])["predictions"][0]["label"]
        == expected[2]
    )


def test_predict_pima_records(client: Client, models_dir: Path) -> None:
    meta, inputs, outputs = _golden(models_dir, "pima")
    names = [f["name"] for f in meta["input"]["features"]]
    records = [dict(zip(names, map(float, row), strict=True)) for row in inputs]
    result = client.predict("pima", records, version=meta["version"], threshold=0.5)
    probs = np.array([p["probability"] for p in result["predictions"]])
    np.testing.assert_allclose(probs, outputs[:, 0], atol=1e-3)
    assert [p["outcome_index"] for p in result["predictions"]] == [int(p >= 0.5) for p in probs]
    assert result["threshold"] == 0.5
    one = client.predict("pima", records[0], version=meta["version"])
    assert one["predictions"][0]["probability"] == pytest.approx(float(outputs[0, 0]), abs=1e-3)


def test_errors_are_clear(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        client.predict("no_such_model", np.zeros((28, 28)))
    assert info.value.status_code == 404
    assert "404" in info.value.message and "no_such_model" in info.value.message
    with pytest.raises(ClientError) as info:
        client.predict("mnist", np.zeros((5, 5)))
    assert info.value.status_code in (400, 422)
    with pytest.raises(ClientError) as info:
        client.predict("pima", {"glucose": 148})
    assert info.value.status_code == 422 and "pregnant" in info.value.message


def test_cli_image_top_k_and_json(
    server: Server, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta, inputs, outputs = _golden(models_dir, "mnist")
    path = _png(inputs[0], tmp_path / "digit.png")
    out = io.StringIO()
    assert cli.main(["mnist", str(path), "--top-k", "3", "--url", server.url], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("mnist version ")
    assert lines[3].split()[:3] == [str(path), "1", meta["labels"][int(outputs[0].argmax())]]
    assert len(lines) == 3 + 3  # header, column names, rule, three ranked labels
    out = io.StringIO()
    assert cli.main(["mnist", str(path), "--json", "--url", server.url], out=out) == 0
    assert (
        json.loads(out.getvalue())["predictions"][0]["label"]
        == meta["labels"][int(outputs[0].argmax())]
    )
    # an option that does not apply reaches the server, which says so (it was dropped)
    argv = ["mnist", str(path), "--threshold", "0.3", "--url", server.url]
    assert cli.main(argv, out=io.StringIO()) == 1
    assert "threshold" in capsys.readouterr().err


def test_cli_pima_flags_csv_and_list(server: Server, models_dir: Path, tmp_path: Path) -> None:
    meta, inputs, outputs = _golden(models_dir, "pima")
    names = [f["name"] for f in meta["input"]["features"]]
    flags = [
        x for name, value in zip(names, inputs[0], strict=True) for x in (f"--{name}", f"{value:g}")
    ]
    out = io.StringIO()
    version = ["--version", str(meta["version"])]
    assert cli.main(["pima", *flags, *version, "--json", "--url", server.url], out=out) == 0
    answer = json.loads(out.getvalue())
    assert answer["predictions"][0]["probability"] == pytest.approx(float(outputs[0, 0]), abs=1e-3)

    csv_path = tmp_path / "records.csv"
    csv_path.write_text(
        ",".join(names) + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in inputs)
    )
    out = io.StringIO()
    assert cli.main(["pima", "--csv", str(csv_path), *version, "--url", server.url], out=out) == 0
    table = out.getvalue().splitlines()
    # one row per record, then a line per kind of mark (a prediction set of both outcomes)
    rows = [line for line in table[3:] if line.split()[0].isdigit()]
    assert len(rows) == len(inputs) and table[3 + len(inputs) :] == table[3 + len(rows) :]
    assert table[3].split()[1] == f"{float(outputs[0, 0]):.4f}"

    out = io.StringIO()
    assert cli.main(["--list", "--url", server.url], out=out) == 0
    listing = out.getvalue()
    assert "mnist" in listing and "pima" in listing and "available" in listing


@pytest.fixture(scope="module")
def kaggle_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on the trained Pima version, its metadata naming the features and the label as
    training writes them now (a cached repository may have been trained before)."""
    meta = _metadata(models_dir, "pima")
    repo = tmp_path_factory.mktemp("kaggle-models")
    version = repo / "pima" / str(meta["version"])
    shutil.copytree(models_dir / "pima" / str(meta["version"]), version)
    aliases = {spec.name: list(spec.aliases) for spec in PIMA_FEATURE_SPECS}
    for feature in meta["input"]["features"]:
        feature["aliases"] = aliases[feature["name"]]
    meta["input"]["label_names"] = list(PIMA_LABEL_NAMES)
    (version / "metadata.json").write_text(json.dumps(meta))  # not among its own checksums
    with run_server(repo, repo / "server.log") as running:
        yield running


def test_cli_reads_kaggle_s_csv_as_it_is(
    kaggle_server: Server, models_dir: Path, tmp_path: Path
) -> None:
    """Kaggle's diabetes.csv, header and Outcome column included, is predicted as the same rows
    under the service's own names; a misspelt column is told the names the server takes."""
    _, inputs, outputs = _golden(models_dir, "pima")
    url = kaggle_server.url
    header = ("Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,"
              "DiabetesPedigreeFunction,Age,Outcome")  # fmt: skip
    csv_path = tmp_path / "diabetes.csv"
    csv_path.write_text(
        header + "\n" + "\n".join(",".join(f"{v:g}" for v in row) + ",1" for row in inputs)
    )
    out = io.StringIO()
    assert cli.main(["pima", "--csv", str(csv_path), "--json", "--url", url], out=out) == 0
    got = [p["probability"] for p in json.loads(out.getvalue())["predictions"]]
    assert got == pytest.approx(outputs[:, 0].tolist(), abs=1e-3)

    record = dict(zip(header.split(",")[:8], inputs[0].tolist(), strict=True))
    record["BloodPrssure"] = record.pop("BloodPressure")
    with Client(url, timeout=30) as client, pytest.raises(ClientError) as info:
        client.predict("pima", {**record, "Outcome": 1})
    assert info.value.status_code == 422
    assert "did you mean BloodPressure (pressure)?" in info.value.detail


def test_console_script_uses_env_url_and_reports_errors(server: Server, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("predict")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.client.cli"]
    env = {**os.environ, "SERVE_URL": server.url}
    ok = subprocess.run(
        [*command, "--list"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "mnist" in ok.stdout
    bad = subprocess.run(
        [*command, "nosuchmodel", str(tmp_path / "missing.png")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("predict: error: cannot read")
    image = tmp_path / "blank.png"
    Image.new("L", (28, 28)).save(image)
    unknown = subprocess.run(
        [*command, "nosuchmodel", str(image)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1
    assert "404" in unknown.stderr and "nosuchmodel" in unknown.stderr
    assert "Traceback" not in unknown.stderr


EXAMPLES = ROOT / "examples"


def test_cli_marks_a_picture_the_model_was_not_trained_on(server: Server) -> None:
    digit = str(EXAMPLES / "digit.png")  # a 7 is no clothing: the tutorial version flags it
    out = io.StringIO()
    argv = ["fashion_mnist", digit, "--abstain", "--url", server.url]
    assert cli.main(argv, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[1].split()[-1] == "note" and "OOD," in lines[3].split()
    assert lines[3].endswith("abstained")
    assert lines[4].startswith("OOD: out of distribution: the input does not look like what")
    assert lines[-1] == (
        "abstained: the server abstains (out_of_distribution): do not rely on the label"
    )


def test_cli_reads_a_number_with_digits_many(server: Server) -> None:
    year = str(EXAMPLES / "year.jpg")
    out = io.StringIO()
    assert cli.main(["mnist", year, "--digits", "many", "--url", server.url], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(", number 2024")
    assert [line.split()[5] for line in lines[3:7]] == ["2", "0", "2", "4"]


def test_array_scales_and_what_the_server_names(client: Client, models_dir: Path) -> None:
    meta, inputs, _ = _golden(models_dir, "mnist")
    mask = inputs[:2] > 0.5
    as_unit = client.predict("mnist", mask.astype(np.float32), version=meta["version"])
    for ink in (mask, mask.astype(np.int64), mask.astype(np.uint8) * 255):
        got = client.predict("mnist", ink, version=meta["version"])  # type: ignore[arg-type]
        assert [p["probabilities"] for p in got["predictions"]] == [
            p["probabilities"] for p in as_unit["predictions"]
        ]
    with pytest.raises(ClientError) as info:
        client.predict("pima", np.round(inputs[0] * 255).astype(np.uint8))
    assert info.value.status_code == 422 and "expected 8 values" in info.value.message


def test_lists_options_and_explain(client: Client, models_dir: Path) -> None:
    meta, inputs, outputs = _golden(models_dir, "pima")
    row = [float(v) for v in inputs[0]]
    result = client.predict("pima", row, version=meta["version"], alpha=0.2, abstain=True)
    one = result["predictions"][0]
    assert one["probability"] == pytest.approx(float(outputs[0, 0]), abs=1e-3)
    assert result["alpha"] == 0.2 and "abstained" in one
    explained = client.explain("pima", row, version=meta["version"])
    first = explained["explanations"][0]
    total = sum(a["probability"] for a in first["attributions"])
    assert total == pytest.approx(first["probability"] - first["base"]["probability"], abs=1e-4)
    image = client.explain("mnist", EXAMPLES / "digit.png", target=3)
    assert image["method"] == "occlusion" and image["explanations"][0]["label"] == "3"
    digits = _golden(models_dir, "mnist")[1]
    as_list = client.predict("mnist", digits[:2].tolist())
    assert len(as_list["predictions"]) == 2
    with Client(client.base_url, timeout=1.5) as short:  # asks the server for 1.35 s: accepted
        assert short.predict("mnist", digits[0])["predictions"]


def test_cli_api_key(
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers.live_server import run_server

    env = {"SERVE_API_KEY": "k1,k2"}
    with run_server(models_dir, tmp_path / "server.log", env=env) as keyed:
        monkeypatch.delenv("SERVE_API_KEY", raising=False)  # the shell's variable unset
        digit = str(EXAMPLES / "digit.png")
        assert cli.main(["mnist", digit, "--url", keyed.url], out=io.StringIO()) == 1
        err = capsys.readouterr().err
        assert err.startswith("predict: error: ") and "401" in err
        assert err.rstrip().endswith("give the key with --api-key KEY or $SERVE_API_KEY")
        argv = ["mnist", digit, "--url", keyed.url, "--api-key", "k2"]
        assert cli.main(argv, out=io.StringIO()) == 0
        assert cli.main([*argv[:-1], "wrong"], out=io.StringIO()) == 1
        assert "check the key given with --api-key" in capsys.readouterr().err
        with pytest.raises(ClientError, match=r"Client\(api_key=\.\.\.\)") as info:
            Client(keyed.url, api_key="").predict("mnist", digit)
        assert info.value.status_code == 401
