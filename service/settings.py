"""Service configuration: one pydantic-settings class, read from ``SERVE_*`` environment variables.

Built once in ``main`` (or by a test) and passed to ``create_app(settings)``; nothing here runs at
import time. Dict and list settings take JSON in the environment, for example
``SERVE_VERSION_LABELS='{"mnist": {"stable": 1, "canary": 2}}'``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024
MAX_KEYS = 32  # per key setting


def split_keys(secret: SecretStr | None) -> list[str]:
    """The keys of a key setting (``api_key``, ``admin_key``): comma-separated, blanks dropped."""
    if secret is None:
        return []
    return [k.strip() for k in secret.get_secret_value().split(",") if k.strip()]


# A model's folder name, and so every name a request or a setting can reach a model by.
NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
VERSION_RULE = "versions are numbered from 1 (below 1,000,000,000)"


def _is_version(number: int) -> bool:
    return 1 <= number < 10**9


SHADOW_FORMAT = "expected <model>=<version or label>:<fraction in [0, 1]>, e.g. mnist=baseline:0.1"


def shadow_target(spec: str) -> tuple[str, float]:
    """``"baseline:0.1"`` -> ("baseline", 0.1): a version number or label, and a fraction (spaces
    around either are not part of it); ValueError otherwise."""
    target, _, fraction = spec.rpartition(":")
    value = float(fraction)
    if not target.strip() or not 0.0 <= value <= 1.0:
        raise ValueError(f"shadow {spec!r}: {SHADOW_FORMAT}")
    return target.strip(), value


class Settings(BaseSettings):
    """Every knob of the service. Environment variables are ``SERVE_<FIELD>`` (case-insensitive)."""

    # allow_inf_nan: "inf" is no duration, size or budget; it would stop the start later with a
    # traceback (the shutdown grace period is a whole number of seconds) or never end a wait
    model_config = SettingsConfigDict(
        env_prefix="SERVE_", extra="ignore", protected_namespaces=(), allow_inf_nan=False
    )

    # --- repository and selection -------------------------------------------------------------
    models_dir: Path = Field(default=Path("models"), description="Root of the model repository.")
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Model names to serve; empty serves every model found."
    )
    version_policy: Literal["latest", "all", "specific"] = Field(
        default="latest",
        description="latest: the newest finished version of each model, and under the fast "
        "default policy the older ones down to the first that meets its accuracy target within "
        "the latency budget (all, when none does: the default is then chosen among them); all: "
        "every finished version; specific: the versions listed in `versions`, of the models it "
        "lists (others are not served).",
    )
    versions: dict[str, list[int]] = Field(
        default_factory=dict, description="For version_policy=specific: model name -> versions."
    )
    version_labels: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Labels per model, e.g. {"mnist": {"stable": 1, "canary": 2}}. The newest '
        'served version trained with the "tutorial" recipe is labelled "baseline" unless set.',
    )
    default_policy: Literal["fast", "newest"] = Field(
        default="fast",
        description="fast: a model's default version is its newest served version that meets "
        "both its accuracy target and the latency budget, else the most accurate one within "
        "the budget, else the newest; newest: the newest served version.",
    )
    latency_budget_us: float = Field(
        default=100.0,
        gt=0.0,
        description="Latency budget of a default version (fast policy): µs per image at batch "
        "1, from the version's metadata or measured at load. The default stays below the FastAPI "
        "floor's own cost per request at 16 connections (docs/performance.md), so a default "
        "model never costs more than the whole request path around it.",
    )
    accuracy_targets: dict[str, float] = Field(
        default_factory=lambda: {"mnist": 0.995, "fashion_mnist": 0.935},
        description="Test accuracy a default version must reach (fast policy), per model; a "
        "model without a target accepts any accuracy.",
    )
    runtime: Literal["auto", "tflite", "savedmodel"] = Field(
        default="auto",
        description="auto: model.tflite when the version lists it, else the SavedModel.",
    )
    readiness: Literal["strict", "serving"] = Field(
        default="strict",
        description="strict: /readyz is 503 while a selected version failed or is missing; "
        "serving: 200 once every model has an available default version.",
    )
    poll_interval_s: float = Field(
        default=0.0,
        ge=0.0,
        description="Rescan the repository this often (seconds); 0 turns it off.",
    )

    # --- HTTP -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    decode_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes that decode uploaded pictures. Unset: one per usable core (CPU"
        " affinity and container quota), at most 4, none on one core. 0: decode in threads.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Empty turns CORS off."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token for prediction endpoints."
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Bearer token for lifecycle endpoints."
    )

    # --- limits -------------------------------------------------------------------------------
    max_instances: int = Field(default=4096, ge=1, description="Instances per request.")
    max_body_bytes: int = Field(default=32 * MIB, ge=1024, description="Request body size.")
    max_body_bytes_in_flight: int | None = Field(
        default=None,
        ge=1024,
        description="Bytes of request bodies held at once, all requests of a worker process "
        "together; a body that would go beyond it gets 503 with Retry-After. Unset: 8 x "
        "max_body_bytes.",
    )
    max_image_pixels: int = Field(
        default=16_777_216, ge=784, description="Pixels per uploaded image."
    )
    max_upload_files: int = Field(default=64, ge=1, description="Files per multipart request.")

    # --- batching and time ----------------------------------------------------------------------
    max_batch_size: int = Field(default=64, ge=1, description="Rows per inference call.")
    max_wait_ms: float = Field(
        default=0.0,
        ge=0.0,
        description="An extra time window a batch may wait for more rows. 0: requests go to "
        "the model in groups that close when the event loop has nothing more to add; a window "
        "only helps when clients are many and the model slow (docs/performance.md).",
    )
    queue_size: int = Field(
        default=8192,
        ge=1,
        description="Queued rows per model version; at least max_instances, so that one "
        "maximal request always fits.",
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description="Deadline of every request but the admin ones "
        "(a client may shorten it: X-Request-Timeout).",
    )

    # --- logging ------------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry instrumentation of the requests that go "
        "through FastAPI (needs an OpenTelemetry SDK configured in the process). Off: the "
        "Prometheus metrics and the access log cover every request.",
    )

    # --- operations: payload log, feedback, drift, shadow (docs/operations.md) -----------------
    payload_log_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of predictions written to the payload log; 0 turns it off.",
    )
    payload_log_path: Path = Field(
        default=Path("logs/payloads.jsonl"), description="The payload log (JSON lines)."
    )
    payload_log_max_bytes: int = Field(
        default=64 * MIB, ge=1024, description="Rotate the payload log at this size."
    )
    payload_log_backups: int = Field(
        default=3, ge=0, description="Rotated payload logs kept (path.1 ... path.N)."
    )
    payload_log_buffer_bytes: int = Field(
        default=16 * MIB,
        ge=1024,
        description="Input and output bytes waiting to be written; a line beyond it is dropped.",
    )
    payload_log_redact: dict[str, list[str]] = Field(
        default_factory=lambda: {"*": ["*"]},
        description='Fields left out of the payload log, per model: feature names, or "*" for '
        'the whole input; the "*" model applies to the others. A name that is not a feature '
        "(a typo) leaves the whole input out, with a warning. The default leaves every input "
        "out (answers only); {} logs inputs in full (what replay needs).",
    )
    feedback_window: int = Field(
        default=0,
        ge=0,
        description="Labelled rows per version that live quality is computed over; 0 turns "
        "feedback off.",
    )
    feedback_pending_rows: int = Field(
        default=20_000,
        ge=1,
        description="Answered rows remembered for feedback (oldest forgotten first).",
    )
    feedback_ttl_s: float = Field(
        default=3600.0, gt=0.0, description="Seconds a prediction waits for its label."
    )
    drift_window: int = Field(
        default=0,
        ge=0,
        description="Recent inputs per version that drift is computed over; 0 turns drift off.",
    )
    drift_alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="False-alarm rate of the drift alarm per window (split over the features).",
    )
    drift_min_rows: int = Field(
        default=200, ge=1, description="Rows a drift window needs before it may raise the alarm."
    )
    shadow: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description='Shadow traffic per model: {"mnist": "baseline:0.1"} runs 10% of mnist '
        "predictions on the baseline version too (a version number or label); also "
        "mnist=baseline:0.1,pima=1:0.5.",
    )

    @model_validator(mode="after")
    def _drift_can_alarm(self) -> Settings:
        if 0 < self.drift_window < self.drift_min_rows:
            raise ValueError(
                f"drift_window ({self.drift_window}) is below drift_min_rows "
                f"({self.drift_min_rows}): the drift alarm could never rise; lower drift_min_rows "
                "or widen the window"
            )
        return self

    @model_validator(mode="after")
    def _specific_names_versions(self) -> Settings:
        """The specific policy serves only the versions ``versions`` lists: with none listed
        it would serve nothing, and admin loads could not reach a model either, unless
        ``models`` names the models (none loaded at start, each loaded by an admin request)."""
        if self.version_policy == "specific" and not self.versions and not self.models:
            raise ValueError(
                "version_policy specific serves the versions SERVE_VERSIONS lists, and it lists "
                "none: give them, e.g. SERVE_VERSIONS='{\"mnist\": [1, 2]}', or use the latest "
                "or all policy (or name the models in SERVE_MODELS to load versions by admin "
                "requests alone)"
            )
        return self

    @model_validator(mode="after")
    def _versions_need_specific(self) -> Settings:
        """Only the specific policy reads ``versions``: under another it would be ignored, and
        an operator who pinned a version would be served the policy's choice without a word."""
        if self.versions and self.version_policy != "specific":
            raise ValueError(
                f"SERVE_VERSIONS lists versions, but version_policy {self.version_policy} "
                "ignores them: set SERVE_VERSION_POLICY=specific to serve only those, or unset "
                "SERVE_VERSIONS"
            )
        return self

    @model_validator(mode="after")
    def _feedback_in_one_worker(self) -> Settings:
        """A label reaches the worker process that receives it, and only the worker that
        answered the prediction remembers it: with several workers most labels would be refused
        as unknown, and live quality would be computed on a fraction of them."""
        if self.feedback_window > 0 and self.workers > 1:
            raise ValueError(
                f"feedback (SERVE_FEEDBACK_WINDOW={self.feedback_window}) needs one worker "
                f"process, and SERVE_WORKERS is {self.workers}: each worker remembers only the "
                "predictions it answered; keep SERVE_WORKERS=1 when feedback is on "
                "(docs/operations.md)"
            )
        return self

    @property
    def body_bytes_in_flight(self) -> int:
        """``max_body_bytes_in_flight``, or its default when unset."""
        if self.max_body_bytes_in_flight is None:
            return 8 * self.max_body_bytes
        return self.max_body_bytes_in_flight

    @model_validator(mode="after")
    def _in_flight_holds_a_body(self) -> Settings:
        if self.body_bytes_in_flight < self.max_body_bytes:
            raise ValueError(
                f"max_body_bytes_in_flight ({self.body_bytes_in_flight}) must be at least "
                f"max_body_bytes ({self.max_body_bytes}): a body of max_body_bytes could never "
                "be received"
            )
        return self

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> Settings:
        if self.queue_size < self.max_instances:
            raise ValueError(
                f"queue_size ({self.queue_size}) must be at least max_instances "
                f"({self.max_instances}): a request of max_instances rows could never be queued"
            )
        return self

    @field_validator("version_labels", mode="after")
    @classmethod
    def _labels_are_names(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """A label that reads as a number could never be reached: the URL's number wins."""
        for name, labels in value.items():
            for label, version in labels.items():
                if not label or label.isdigit() or "/" in label or len(label) > 64:
                    raise ValueError(
                        f"label {label!r} of model {name}: a label is a name of 1-64 characters, "
                        "not a number (a URL's number is always a version), without '/'"
                    )
                if not _is_version(version):
                    raise ValueError(
                        f"label {label!r} of model {name} names version {version}: {VERSION_RULE}"
                    )
        return value

    @field_validator("versions", mode="after")
    @classmethod
    def _versions_are_numbers(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        """A version no folder can have would leave its model unserved, with no word of why."""
        for name, versions in value.items():
            for version in versions:
                if not _is_version(version):
                    raise ValueError(f"model {name} lists version {version}: {VERSION_RULE}")
        return value

    @field_validator("accuracy_targets", mode="after")
    @classmethod
    def _targets_are_fractions(cls, value: dict[str, float]) -> dict[str, float]:
        """A target no accuracy can reach (99.5 meant as a percentage) would leave every
        version short of it without a word: the default would fall back to the most
        accurate version within the budget."""
        for name, target in value.items():
            if not 0.0 <= target <= 1.0:
                raise ValueError(
                    f"target {target:g} of model {name}: a test accuracy is a fraction from 0 "
                    "to 1 (0.995, not 99.5)"
                )
        return value

    @field_validator("shadow", mode="before")
    @classmethod
    def _shadow_pairs(cls, value: object) -> object:
        """Accept ``model=target:fraction,...`` as well as a JSON object."""
        if isinstance(value, str) and value.lstrip().startswith("{"):
            found = json.loads(value, object_pairs_hook=lambda items: items)
            if not isinstance(found, list):
                return found
            names = [name.strip() if isinstance(name, str) else name for name, _ in found]
            twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
            if twice is not None:
                raise ValueError(f"shadow: model {twice!r} is named twice")
            return dict(found)
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for part in (p for p in value.split(",") if p.strip()):
                name, equals, spec = part.partition("=")
                if not equals:
                    raise ValueError(f"shadow {part.strip()!r}: {SHADOW_FORMAT}")
                if name.strip() in pairs:
                    raise ValueError(f"shadow: model {name.strip()!r} is named twice")
                pairs[name.strip()] = spec
            return pairs
        return value

    @field_validator("shadow", mode="after")
    @classmethod
    def _shadow_specs(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, spec in value.items():
            try:
                target, _ = shadow_target(spec)
            except ValueError:
                raise ValueError(f"shadow for {name}: {spec!r}: {SHADOW_FORMAT}") from None
            model = name.strip()
            if not model:
                raise ValueError(f"shadow {spec!r}: no model named: {SHADOW_FORMAT}")
            if model in out:
                raise ValueError(f"shadow: model {model!r} is named twice")
            out[model] = f"{target}:{spec.rpartition(':')[2].strip()}"
        return out

    @field_validator(
        "models",
        "versions",
        "version_labels",
        "accuracy_targets",
        "payload_log_redact",
        "shadow",
        mode="after",
    )
    @classmethod
    def _models_are_names(
        cls, value: list[str] | dict[str, object], info: ValidationInfo
    ) -> object:
        """A model name no folder can have would be a model never served (SERVE_MODELS keeping
        /readyz at 503 with "not in the repository") or a setting ignored without a word."""
        others = info.field_name == "payload_log_redact"  # "*": the redaction's other models
        for name in value:
            if not (others and name == "*") and not NAME_RE.fullmatch(name):
                raise ValueError(
                    f"model {name[:80]!r}: a model name is 1-64 of a-z, 0-9 and _ (its folder's)"
                )
        return value

    @field_validator("models_dir", "payload_log_path", mode="before")
    @classmethod
    def _path_given(cls, value: object, info: ValidationInfo) -> object:
        """An empty path is the working folder (``Path("")`` is ``.``): an unset shell variable
        in ``SERVE_MODELS_DIR=$DIR`` would serve whatever folder the server started in, and an
        empty payload log path is a folder no line can be written to. The payload log's path is
        read only when the log is on (``payload_log_rate``, validated before it): with the log
        off an empty one is a path never used, and stands for the default (a rate that failed
        its own check is missing from ``info.data``: that error alone is said)."""
        if isinstance(value, str) and not value.strip():
            field = info.field_name or ""
            if field == "payload_log_path" and not info.data.get("payload_log_rate", 0.0) > 0:
                return cls.model_fields[field].default
            hint = " while the payload log is on" if field == "payload_log_path" else ""
            raise ValueError(f"is empty (an unset shell variable?){hint}: give a path, or unset it")
        return value

    @field_validator("api_key", "admin_key", mode="after")
    @classmethod
    def _keys_are_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        """A key setting that holds no key would turn the check off without a word (an unset
        shell variable in ``SERVE_API_KEY=$KEY``), and a key a header cannot carry could
        never match: both stop the start. The message never shows a key."""
        if value is None:
            return None
        keys = split_keys(value)
        if not keys:
            raise ValueError("holds no key (only blanks or commas): unset it to turn keys off")
        if len(keys) > MAX_KEYS:
            raise ValueError(f"holds {len(keys)} keys; at most {MAX_KEYS}")
        for i, key in enumerate(keys, 1):
            if not (key.isascii() and key.isprintable() and " " not in key):
                raise ValueError(
                    f"key {i} is not a bearer token: printable ASCII without spaces only"
                )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", "models", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept a comma-separated string as well as a JSON list."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
