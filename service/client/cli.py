"""The ``predict`` console command.

    predict mnist digit.png
    predict fashion_mnist shoe.jpg --top-k 3
    predict pima --pregnant 6 --glucose 148 --pressure 72 --triceps 35 --insulin 0 \\
                 --mass 33.6 --pedigree 0.627 --age 50
    predict pima --csv records.csv --json
    predict mnist year.jpg --digits many
    predict --list [MODEL]

The server is ``--url``, else env ``SERVE_URL``, else http://127.0.0.1:8000; the API key is
``--api-key``, else env ``SERVE_API_KEY``. Exit status: 0 on success, 1 when the request fails
(also when the server's answer is not what was asked for), 2 on bad usage, 130 when interrupted
(Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

from service.client.client import (
    API_KEY_ENV,
    DEFAULT_URL,
    MAX_TIMEOUT_S,
    URL_ENV,
    Client,
    ClientError,
    auth_header,
    env_api_key,
    excerpt,
    url_problem,
)

PIMA_FEATURES: dict[str, str] = {
    "pregnant": "number of pregnancies",
    "glucose": "plasma glucose 2 h after an oral glucose tolerance test, mg/dL",
    "pressure": "diastolic blood pressure, mm Hg",
    "triceps": "triceps skin-fold thickness, mm",
    "insulin": "2-hour serum insulin, µU/mL",
    "mass": "body mass index, kg/m²",
    "pedigree": "diabetes pedigree function",
    "age": "age, years",
}
BAR_WIDTH = 24
WIDE = 1.5  # a picture this many times wider than tall may hold a number of several digits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict",
        description="Ask the model server for a prediction and print it as a table.",
        epilog=f"Server: --url, else ${URL_ENV}, else {DEFAULT_URL}. "
        f"API key: --api-key, else ${API_KEY_ENV}.",
    )
    parser.add_argument("model", nargs="?", help="mnist, fashion_mnist or pima")
    parser.add_argument("inputs", nargs="*", metavar="IMAGE", help="PNG, JPEG or WebP files")
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the served models (or only MODEL, when named) and exit",
    )
    parser.add_argument(
        "--version",
        dest="model_version",
        type=version_or_label,
        metavar="V",
        help="model version or label (default: the model's default version)",
    )
    parser.add_argument("--top-k", type=int, metavar="K", help="show the K most likely labels")
    parser.add_argument(
        "--threshold", type=finite_float, help="pima: decision threshold on P(diabetes)"
    )
    parser.add_argument(
        "--digits",
        choices=("one", "many"),
        help="digit models: 'many' reads a number of several digits in one picture "
        "(one image file); default one",
    )
    parser.add_argument(
        "--alpha",
        type=finite_float,
        metavar="A",
        help="versions with prediction sets: their miscoverage (e.g. 0.1 for 90%% sets)",
    )
    parser.add_argument(
        "--abstain",
        action="store_true",
        help="versions with prediction sets: say when the model abstains",
    )
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="pima: CSV of records with a header row, its columns sent as named (the server "
        "takes the other names its version lists, such as Kaggle's)",
    )
    parser.add_argument("--json", action="store_true", help="print the server's JSON answer")
    parser.add_argument("--url", type=server_url, help=f"server URL (default ${URL_ENV})")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the server's API key (default ${API_KEY_ENV}, which keeps it out of the "
        "process list; of a comma-separated list there, the first key)",
    )
    parser.add_argument("--timeout", type=seconds, default=30.0, help="seconds (default 30)")
    pima = parser.add_argument_group("pima record (all eight, raw clinical values)")
    for name, help_text in PIMA_FEATURES.items():
        pima.add_argument(f"--{name}", type=finite_float, metavar="X", help=help_text)
    return parser


def _prediction_options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(flag, attribute) of every option that shapes a prediction: all but --list and those
    that say how to reach the server or print (the parser is their one list)."""
    general = {"help", "list", "json", "url", "api_key", "timeout", "model", "inputs"}
    return [
        (action.option_strings[0], action.dest)
        for action in parser._actions
        if action.dest not in general and action.option_strings
    ]


def finite_float(text: str) -> float:
    """An argparse type: a finite number (JSON holds no NaN or infinity)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def server_url(text: str) -> str:
    """An argparse type: an http(s) URL with a host."""
    problem = url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def resolved_url(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """``--url``, else ``$SERVE_URL`` (checked here, so that its error names it), else the
    default; an empty variable counts as unset, as for :class:`Client`."""
    if args.url:
        return str(args.url)
    url = os.environ.get(URL_ENV) or DEFAULT_URL
    problem = url_problem(url)
    if problem:
        parser.error(f"${URL_ENV}: {problem}")
    return url


def version_or_label(text: str) -> str:
    """An argparse type: a version number or a label name (one URL segment)."""
    if not text or any(c in text for c in "/?#%\\") or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"not a version number or label: {text!r}")
    return text


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds, up to the client's limit."""
    value = finite_float(text)
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {text!r}"
        )
    return value


def _pima_record(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, float]:
    given = {name: getattr(args, name) for name in PIMA_FEATURES}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        parser.error(
            "pima needs all eight features; missing: " + ", ".join(f"--{m}" for m in missing)
        )
    return {name: float(value) for name, value in given.items()}


class NotAnAnswer(Exception):
    """A 200 whose JSON is not what the command asked for (a wrong --url, a proxy's page)."""


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    try:
        return _main(argv, out or sys.stdout)
    except KeyboardInterrupt:
        # a shell reports a command stopped by SIGINT as 128 + 2; the stack is of no use to anyone
        print("predict: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None, out: TextIO) -> int:
    parser = build_parser()
    # options may come between the model and its files: predict mnist --top-k 3 a.png b.png
    args = parser.parse_intermixed_args(argv)
    if args.top_k is not None and args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.list and args.inputs:
        parser.error("--list takes at most one model name")
    if args.list:  # it lists models and versions: a prediction's options would be ignored
        given = [
            flag
            for flag, name in _prediction_options(parser)
            if getattr(args, name) not in (None, False)
        ]
        if given:
            parser.error(f"--list takes none of a prediction's options: {', '.join(given)}")
    if not args.list and not args.model:
        parser.error("name a model (mnist, fashion_mnist, pima) or use --list")
    if args.digits == "many" and len(args.inputs) != 1:
        parser.error("--digits many reads one picture: give one image file")
    feature_given = any(getattr(args, name) is not None for name in PIMA_FEATURES)
    if args.api_key is None:
        args.api_key = env_api_key()
    try:
        url = resolved_url(args, parser)
        try:
            auth_header(args.api_key, f"--api-key or ${API_KEY_ENV}")
        except ClientError as exc:
            parser.error(exc.message)
        with Client(
            url, api_key=args.api_key or "", timeout=args.timeout, url_hint=f"--url or ${URL_ENV}"
        ) as client:
            if args.list:
                if args.model:  # one model: the server's 404 names an unknown one
                    one = client.model(args.model)
                    models = [one]
                    listed: Any = one
                else:
                    models = listed = client.models()
                if not all(_is_model(model) for model in models):
                    raise NotAnAnswer(f"not a model list: {excerpt(listed)}")
                out.write(
                    json.dumps(listed, indent=2) + "\n" if args.json else format_models(models)
                )
                return 0
            if args.csv or feature_given:
                if args.inputs:
                    parser.error("give either image files or Pima features/--csv, not both")
                if args.csv and feature_given:
                    parser.error("give either --csv or the eight feature flags, not both")
                data: Any = client_records(args, parser)
            else:
                if not args.inputs:
                    parser.error("give one or more image files, or Pima features (see --help)")
                data = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
            # every option goes to the server, which says when one does not apply to the model
            result = client.predict(
                args.model,
                data,
                version=args.model_version,
                top_k=args.top_k,
                threshold=args.threshold,
                alpha=args.alpha,
                abstain=True if args.abstain else None,
                digits=args.digits,
            )
            if not _is_prediction(result):
                raise NotAnAnswer(f"not a prediction: {excerpt(result)}")
    except ClientError as exc:
        print(f"predict: error: {_advice(exc, args)}", file=sys.stderr)
        return 1
    except NotAnAnswer as exc:
        print(
            f"predict: error: the server's answer was {exc} (is --url or ${URL_ENV} this service?)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        out.write(json.dumps(result, indent=2) + "\n")
        return 0
    out.write(format_result(result, args.inputs, args.top_k or 1))
    if len(args.inputs) == 1 and args.digits != "many":
        hint = wide_picture_hint(result, args.inputs[0])
        if hint:
            out.write(hint + "\n")
    return 0


def _advice(exc: ClientError, args: argparse.Namespace) -> str:
    """The error, with how to fix it in this command's terms rather than the client's."""
    if exc.status_code == 401:
        return f"{exc.detail}; give the key with --api-key KEY or ${API_KEY_ENV}"
    if exc.status_code == 403 and args.api_key:
        return f"{exc.detail}; check the key given with --api-key or ${API_KEY_ENV}"
    if (
        exc.status_code == 422
        and "?digits=many" in exc.detail
        and args.digits != "many"
        and len(args.inputs) == 1  # --digits many reads one picture
    ):
        return f"{exc.detail} (with this command: --digits many)"
    return exc.message


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_class_row(row: Any) -> bool:
    """One image's (or digit's) answer as the table reads it: a label or probabilities by
    label, and whatever marks it has of the types the marks take."""
    if not isinstance(row, dict) or not ("label" in row or "probabilities" in row):
        return False
    probs = row.get("probabilities")
    return (
        (probs is None or (isinstance(probs, dict) and all(map(_is_number, probs.values()))))
        and isinstance(row.get("prediction_set", []), list | type(None))
        and isinstance(row.get("box", []), list | type(None))
    )


def _is_pima_row(row: Any) -> bool:
    threshold = row.get("threshold")
    return _is_number(row.get("probability")) and (threshold is None or _is_number(threshold))


def _is_prediction(result: Any) -> bool:
    """Whether ``result`` has the shape :func:`format_result` prints: this server's answer to
    a prediction, and not some other JSON a wrong URL or a proxy gave."""
    if not isinstance(result, dict) or "model" not in result or "version" not in result:
        return False
    if "digits" in result:
        digits = result["digits"]
        return isinstance(digits, list) and all(map(_is_class_row, digits))
    rows = result.get("predictions")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return False
    if "probability" in rows[0]:
        return all(map(_is_pima_row, rows))
    return all(map(_is_class_row, rows))


def _is_model(model: Any) -> bool:
    """Whether ``model`` is one of /models's entries as :func:`format_models` reads them."""
    return (
        isinstance(model, dict)
        and isinstance(model.get("name"), str)
        and isinstance(model.get("versions"), list)
        and all(isinstance(v, dict) for v in model["versions"])
        and isinstance(model.get("labels") or {}, dict)
    )


def client_records(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    if args.csv:
        from service.client.client import read_records_csv

        return read_records_csv(args.csv)
    return _pima_record(args, parser)


# -- formatting ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """A plain-text table; columns in ``right`` are right-aligned."""
    widths = [
        max(_columns(h), *(_columns(r[i]) for r in rows)) if rows else _columns(h)
        for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            pad = " " * (w - _columns(c))
            parts.append(pad + c if i in right else c + pad)
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)]) + "\n"


def _columns(text: str) -> int:
    """Terminal columns ``text`` takes: CJK and other wide characters take two, combining
    marks none (file names are the cells that hold them)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _bar(p: float) -> str:
    if not math.isfinite(p):
        return ""
    filled = max(0, min(BAR_WIDTH, round(p * BAR_WIDTH)))
    return "█" * filled


def _notes(pred: dict[str, Any]) -> list[str]:
    """Short marks for what the server says about a row beyond its label: out of distribution,
    a prediction set of other than one label, an abstention."""
    notes: list[str] = []
    if pred.get("out_of_distribution") is True:
        notes.append("OOD")
    labels = pred.get("prediction_set")
    if isinstance(labels, list) and len(labels) != 1:
        notes.append("set {" + ", ".join(map(str, labels)) + "}")
    if pred.get("abstained") is True:
        notes.append("abstained")
    return notes


def _legend(rows: Sequence[dict[str, Any]], result: dict[str, Any]) -> str:
    """One line per kind of mark in the table, saying what it means."""
    alpha = result.get("alpha")
    at = f" at alpha {alpha:g}" if isinstance(alpha, int | float) else ""
    sure = f" ({1 - alpha:.0%} confidence)" if isinstance(alpha, int | float) else ""
    model = result.get("model") or "the model"
    lines: list[str] = []
    if any(p.get("out_of_distribution") is True for p in rows):
        lines.append(
            f"OOD: out of distribution: the input does not look like what {model} was trained "
            "on, so its label is a guess"
        )
    sets: list[list[Any]] = [
        p["prediction_set"] for p in rows if isinstance(p.get("prediction_set"), list)
    ]
    if any(len(s) == 0 for s in sets):
        lines.append(
            f"set {{}}: empty prediction set: no label is likely enough{at} to be the right "
            "one; do not rely on the label shown"
        )
    if any(len(s) > 1 for s in sets):
        lines.append(
            f"set {{a, b}}: the prediction set holds several labels: the right one is among "
            f"them{sure}, but the model cannot tell which"
        )
    reasons = sorted({str(p.get("abstain_reason")) for p in rows if p.get("abstained") is True})
    if reasons:
        lines.append(
            f"abstained: the server abstains ({', '.join(reasons)}): do not rely on the label"
        )
    return "".join(line + "\n" for line in lines)


def _class_rows(name: str, pred: dict[str, Any], k: int, with_notes: bool) -> list[list[str]]:
    """Table rows for one image's answer: its k most likely labels, the marks on the first."""
    probs: dict[str, float] = pred.get("probabilities") or {}
    ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)[:k]
    if not ranked:
        ranked = [(str(pred.get("label")), float("nan"))]
    rows: list[list[str]] = []
    for rank, (label, p) in enumerate(ranked, start=1):
        shown = f"{p:.4f}" if math.isfinite(p) else "-"
        row = [name if rank == 1 else "", str(rank), label, shown, _bar(p)]
        if with_notes:
            row.append(", ".join(_notes(pred)) if rank == 1 else "")
        rows.append(row)
    return rows


def format_result(result: dict[str, Any], inputs: Sequence[str], k: int) -> str:
    head = f"{result.get('model')} version {result.get('version')}"
    if isinstance(result.get("digits"), list):
        return _format_number(result, head, k)
    predictions = result.get("predictions", [])
    if predictions and "probability" in predictions[0]:
        cut = result.get("threshold")
        shown = f"{float(cut):g}" if isinstance(cut, int | float) else cut  # as the table shows it
        return head + f", threshold {shown}\n" + _format_pima(predictions, result)
    with_notes = any(_notes(p) for p in predictions)
    rows: list[list[str]] = []
    for n, pred in enumerate(predictions):
        name = inputs[n] if n < len(inputs) else f"#{n + 1}"
        rows += _class_rows(name, pred, k, with_notes)
    headers = ["input", "rank", "label", "probability", ""] + (["note"] if with_notes else [])
    return head + "\n" + table(headers, rows, {1, 3}) + _legend(predictions, result)


def _format_number(result: dict[str, Any], head: str, k: int) -> str:
    """``--digits many``: the number, then each digit with its box in the picture's pixels."""
    digits: list[dict[str, Any]] = result["digits"]
    with_notes = any(_notes(d) for d in digits)
    rows: list[list[str]] = []
    for n, digit in enumerate(digits, start=1):
        box = digit.get("box")
        where = ""
        if isinstance(box, list) and len(box) == 4:
            where = f" at {box[0]},{box[1]} {box[2]}x{box[3]}"
        rows += _class_rows(f"{n}{where}", digit, k, with_notes)
    headers = ["digit", "rank", "label", "probability", ""] + (["note"] if with_notes else [])
    number = result.get("number")
    unlike = " (does not look like a number)" if result.get("out_of_distribution") is True else ""
    return (
        f"{head}, number {number if number else '(none)'}{unlike}\n"
        + table(headers, rows, {1, 3})
        + _legend(digits, result)
    )


def wide_picture_hint(result: dict[str, Any], path: str) -> str | None:
    """When a digit model's answer for one picture is doubtful (out of distribution, an empty
    set, an abstention) and the picture is wide, it may be a number: say how to read one."""
    predictions = result.get("predictions") or []
    if len(predictions) != 1 or not _notes(predictions[0]):
        return None
    labels = predictions[0].get("probabilities") or {}
    if not labels or not all(str(label).isdigit() for label in labels):
        return None  # not a digit model: --digits many does not apply
    size = _picture_size(path)
    if size is None or size[0] < WIDE * size[1]:
        return None
    width, height = size
    return (
        f"hint: {path} is {width}x{height} px, wider than tall: if it holds a number of "
        "several digits, read each one with --digits many"
    )


def _picture_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the image's header; None when it cannot be read."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # only a hint depends on it: no size, no hint
        return None
    return int(width), int(height)


def _format_pima(predictions: Sequence[dict[str, Any]], result: dict[str, Any]) -> str:
    with_notes = any(_notes(p) for p in predictions)
    rows = [
        [
            str(n),
            f"{float(p['probability']):.4f}",
            str(p.get("outcome")),
            f"{float(p['threshold']):g}" if p.get("threshold") is not None else "",
            _bar(float(p["probability"])),
            *([", ".join(_notes(p))] if with_notes else []),
        ]
        for n, p in enumerate(predictions, start=1)
    ]
    headers = ["record", "P(diabetes)", "outcome", "threshold", ""]
    headers += ["note"] if with_notes else []
    return table(headers, rows, {0, 1, 3}) + _legend(predictions, result)


# what /models lists beside the versions it serves: (its key, the state shown, why)
_NOT_SERVED = (
    ("unloaded_versions", "unloaded", "unloaded by an admin request"),
    ("unfinished_versions", "unfinished", "its metadata.json is not there yet"),
)


def format_models(models: Sequence[dict[str, Any]]) -> str:
    """Every version /models reports, served or not, with its state; then a line per model
    with numbered folders that are no versions (the server ignores them)."""
    rows: list[list[str]] = []
    notes: list[str] = []
    for model in models:
        name = str(model.get("name"))
        labels = model.get("labels") or {}
        listed: list[tuple[Any, list[str]]] = []
        for v in model.get("versions", []):
            accuracy = v.get("accuracy")
            listed.append(
                (
                    v.get("version"),
                    [
                        str(v.get("state")),
                        str(v.get("recipe") or ""),
                        f"{accuracy:.4f}" if isinstance(accuracy, float) else "",
                        str(v.get("reason") or ""),
                    ],
                )
            )
        shown = {str(version) for version, _ in listed}
        for key, state, why in _NOT_SERVED:
            others = model.get(key)
            for version in others if isinstance(others, list) else []:
                if str(version) not in shown:
                    shown.add(str(version))
                    listed.append((version, [state, "", "", why]))
        listed.sort(key=lambda item: _version_order(item[0]))
        for version, (state, recipe, accuracy, reason) in listed:
            tags = [lab for lab, target in labels.items() if str(target) == str(version)]
            if str(model.get("default_version")) == str(version):
                tags.insert(0, "default")
            rows.append([name, str(version), state, recipe, accuracy, ", ".join(tags), reason])
        ignored = model.get("ignored_folders")
        if not listed:
            rows.append([name, "-", "none", "", "", "", "no version folder"])
        if isinstance(ignored, list):
            notes.extend(f"{name}: ignored {_ignored(entry)}" for entry in ignored)
    if not models:
        notes.append("no models served")
    headers = ["model", "version", "state", "recipe", "accuracy", "tags", "reason"]
    return table(headers, rows, {1, 4}) + "".join(note + "\n" for note in notes)


def _ignored(entry: Any) -> str:
    """An entry of a model's ``ignored_folders``: its name and why it is no version."""
    if isinstance(entry, dict):
        return f"{entry.get('name')!s}: {entry.get('reason')!s}"
    return f"{entry!s}: not a version number"


def _version_order(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), "") if text.isdigit() else (10**12, text)


if __name__ == "__main__":
    raise SystemExit(main())
