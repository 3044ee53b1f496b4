"""The sidecar's configuration: one frozen object, validated before anything is served.

Environment variables are ``MODELTAP_SIDECAR_<SECTION>_<FIELD>``; flags are ``--section.field``;
``--config FILE`` reads the same keys from TOML. ``modeltap sidecar --help-config`` prints the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sidecar.errors import ConfigError
from sidecar.settings import setting

ENV_PREFIX = "MODELTAP_SIDECAR_"

CaptureMode = Literal["Input", "Output"]
Sampling = Literal["random", "inference_id"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+*-]+$")


@dataclass(frozen=True)
class ServerConfig:
    host: str = setting("0.0.0.0", "Address the proxy listens on.")
    port: int = setting(
        8080, "Port the proxy listens on (clients send inference requests here).", min=0, max=65535
    )
    admin_host: str = setting("0.0.0.0", "Address of the admin port (/metrics, /healthz, /readyz).")
    admin_port: int = setting(
        9090, "Admin port: Prometheus metrics and health/readiness probes.", min=0, max=65535
    )
    shutdown_delay_seconds: float = setting(
        0.0,
        "On SIGTERM, how long the proxy keeps accepting and serving (each answer then closes its "
        "connection) while /readyz already answers 503, before it stops accepting; a preStop "
        "sleep does the same where the image has `sleep`.",
        min=0,
    )
    shutdown_timeout_seconds: float = setting(
        20.0,
        "On SIGTERM, after the shutdown delay, how long in-flight requests may take to finish.",
        min=0,
    )
    max_request_header_bytes: int = setting(
        8190, "Largest request line or single header field accepted (larger get 431).", min=1024
    )
    max_request_headers: int = setting(
        100, "Most header fields a request may carry (more get 431).", min=1, max=10000
    )
    max_request_head_bytes: int = setting(
        65536,
        "Largest request head (request line and all header fields) accepted (larger get 431).",
        min=1024,
    )
    max_body_bytes: int = setting(
        64 * 1024 * 1024,
        "Largest request body accepted, streamed bodies counted as they pass (larger get 413).",
        min=0,
    )
    header_read_timeout_seconds: float = setting(
        10.0,
        "Time a client has to send a whole request head, from its first byte (or from connecting); "
        "then 408 and the connection is closed.",
        min=0,
        min_exclusive=True,
    )
    body_read_timeout_seconds: float = setting(
        30.0,
        "Longest wait for the next bytes of a request body; then 408 and the connection is closed.",
        min=0,
        min_exclusive=True,
    )
    keepalive_timeout_seconds: float = setting(
        620.0,
        "How long an idle keep-alive client connection is kept (above common load-balancer idle "
        "timeouts, so they close first).",
        min=0,
        min_exclusive=True,
    )
    max_connections: int = setting(
        1024,
        "Open client connections at most; past it new ones get 503 and are closed.",
        min=1,
    )


@dataclass(frozen=True)
class UpstreamConfig:
    url: str = setting(
        "http://127.0.0.1:8081", "Base URL of the model server the proxy forwards to."
    )
    connect_timeout_seconds: float = setting(
        5.0,
        "Time to open a connection to the model server before answering 504.",
        min=0,
        min_exclusive=True,
    )
    timeout_seconds: float = setting(
        60.0,
        "Time for the model server to answer a request before answering 504.",
        min=0,
        min_exclusive=True,
    )
    max_connections: int = setting(
        256, "Keep-alive connection pool size to the model server (0 = unlimited).", min=0
    )
    keepalive_timeout_seconds: float = setting(
        30.0, "How long an idle pooled connection to the model server is kept.", min=0
    )


@dataclass(frozen=True)
class CaptureConfig:
    enabled: bool = setting(
        True, "Capture sampled request/response pairs (SageMaker EnableCapture)."
    )
    endpoint_name: str = setting("default", "Endpoint name written into the capture layout.")
    variant_name: str = setting("AllTraffic", "Variant name written into the capture layout.")
    sample_percent: float = setting(
        20.0,
        "Percentage of requests captured, 0-100 (SageMaker InitialSamplingPercentage).",
        min=0,
        max=100,
    )
    sampling: Sampling = setting(
        "random",
        "'random' decides per request; 'inference_id' hashes the inference id header so a "
        "retried request is sampled the same way (random when the header is absent).",
    )
    modes: tuple[CaptureMode, ...] = setting(
        ("Input", "Output"), "What is captured: Input, Output or both (SageMaker CaptureOptions)."
    )
    capture_errors: bool = setting(False, "Also capture pairs whose response status is not 2xx.")
    max_payload_bytes: int = setting(
        6 * 1024 * 1024,
        "Largest request or response body captured; bigger ones are forwarded, not captured, and counted.",
        min=0,
    )
    csv_content_types: tuple[str, ...] = setting(
        ("text/csv",), "Content types captured as text with encoding CSV."
    )
    json_content_types: tuple[str, ...] = setting(
        ("application/json", "application/jsonlines"),
        "Content types captured as text with encoding JSON (others are base64).",
    )
    inference_id_header: str = setting(
        "X-Inference-Id",
        "Request header carrying the caller's inference id (eventMetadata.inferenceId).",
    )
    target_model_header: str = setting(
        "X-Target-Model", "Request header naming the target model of a multi-model server."
    )
    headers: tuple[str, ...] = setting(
        (),
        "Request/response headers copied into records (modeltap.requestHeaders/responseHeaders); "
        "no others are. Authorization, Proxy-Authorization, Cookie and Set-Cookie are refused.",
    )
    queue_size: int = setting(
        10000,
        "Records held in memory between the request path and the spool writer; overflow is dropped and counted.",
        min=1,
    )
    queue_max_bytes: int = setting(
        256 * 1024 * 1024,
        "Payload bytes held in that queue at most; past it records are dropped and counted.",
        min=1,
    )
    queue_max_age_seconds: float = setting(
        1.0,
        "A record joins that queue only while the oldest record not yet written joined it less "
        "than this long ago; past it records are dropped and counted. So a SIGKILL loses at most "
        "the records of this span of traffic, however slow the writer is.",
        min=0,
        min_exclusive=True,
    )


@dataclass(frozen=True)
class RedactConfig:
    input_json_paths: tuple[str, ...] = setting(
        (),
        "Paths (a.b, [i], [*], ['k']) of JSON input values replaced before a record is written.",
    )
    output_json_paths: tuple[str, ...] = setting(
        (), "Paths of JSON output values replaced before a record is written."
    )
    input_csv_columns: tuple[int, ...] = setting(
        (), "CSV input columns (0-based, every row) replaced before a record is written."
    )
    output_csv_columns: tuple[int, ...] = setting(
        (), "CSV output columns (0-based, every row) replaced before a record is written."
    )
    replacement: Literal["marker", "hash"] = setting(
        "marker",
        "'marker' writes redact.marker; 'hash' writes HMAC-SHA256(key, value) as truncated hex, "
        "so equal values stay joinable.",
    )
    marker: str = setting("[REDACTED]", "Text that replaces a redacted value ('marker').")
    hash_key: str = setting(
        "", "HMAC key for 'hash' (at least 16 bytes); prefer hash_key_file.", secret=True
    )
    hash_key_file: Path | None = setting(
        None,
        "File holding the HMAC key for 'hash' (e.g. a mounted Secret); outer whitespace is ignored.",
    )
    hash_hex_chars: int = setting(16, "Hex characters of the HMAC kept ('hash').", min=8, max=64)

    @property
    def enabled(self) -> bool:
        return bool(
            self.input_json_paths
            or self.output_json_paths
            or self.input_csv_columns
            or self.output_csv_columns
        )


@dataclass(frozen=True)
class SpoolConfig:
    dir: Path = setting(
        Path("/var/lib/modeltap/spool"), "Local directory where records are spooled."
    )
    max_segment_bytes: int = setting(
        16 * 1024 * 1024, "A segment is sealed when it reaches this size.", min=1
    )
    max_segment_age_seconds: float = setting(
        60.0,
        "A non-empty segment is sealed when its first record is this old.",
        min=0,
        min_exclusive=True,
    )
    flush_interval_seconds: float = setting(
        0.2,
        "How often an idle spool writer wakes up to seal aged segments and re-check the disk "
        "(a queued record is taken at once).",
        min=0,
        min_exclusive=True,
    )
    max_disk_usage_percent: float = setting(
        75.0,
        "Capture stops while the spool's filesystem is fuller than this (serving goes on).",
        min=0,
        max=100,
    )
    max_bytes: int = setting(
        1024 * 1024 * 1024,
        "Byte budget of the spool's segments (open and sealed): capture stops when a record would "
        "take them past it (serving goes on) and resumes once uploads bring them below 90% of it. "
        "Keep it below the volume's size (an emptyDir's sizeLimit). 0 = no budget.",
        min=0,
    )
    fsync: bool = setting(True, "fsync each sealed segment before it is handed to the uploader.")
    writer_nice: int = setting(
        10,
        "Niceness added to the spool writer thread: when the CPU is saturated, serving keeps it "
        "and capture sheds records (counted as dropped_queue_full). 0 shares it equally.",
        min=0,
        max=19,
    )
    direct_io: bool = setting(
        True,
        "Write segments with O_DIRECT where the filesystem supports it (no page-cache copy; "
        "buffered writes elsewhere).",
    )


@dataclass(frozen=True)
class StoreConfig:
    destination: str = setting(
        "file:///var/lib/modeltap/captures",
        "Where sealed segments go: s3://bucket/prefix or file:///dir.",
    )
    gzip: bool = setting(False, "Store objects gzip-compressed (.jsonl.gz).")
    region: str = setting("us-east-1", "S3 region.")
    endpoint_url: str = setting("", "S3 endpoint URL for S3-compatible stores (empty: AWS).")
    path_style: bool = setting(False, "Use path-style S3 addressing (most S3-compatible stores).")
    sse: Literal["", "AES256", "aws:kms"] = setting(
        "", "Server-side encryption: '' (bucket default), AES256 (SSE-S3) or aws:kms (SSE-KMS)."
    )
    kms_key_id: str = setting("", "KMS key id/ARN/alias for SSE-KMS (SageMaker KmsKeyId).")
    max_concurrency: int = setting(4, "Segments uploaded at once.", min=1, max=64)
    multipart_threshold_bytes: int = setting(
        64 * 1024 * 1024,
        "Objects at least this large go up as multipart uploads (keep it above spool.max_segment_bytes).",
        min=5 * 1024 * 1024,
    )
    retry_base_seconds: float = setting(
        0.5, "First retry delay; doubles per attempt, with jitter.", min=0
    )
    retry_max_seconds: float = setting(30.0, "Longest delay between two retries.", min=0)
    shutdown_grace_seconds: float = setting(
        20.0,
        "On SIGTERM, how long to keep uploading; what is left stays on disk for the next start.",
        min=0,
    )
    check_attempts: int = setting(
        5,
        "Attempts of the start-up write check while the store answers with a transient error "
        "(5xx, throttling, timeouts, connection errors): waits store.retry_base_seconds, "
        "doubling, between them, all within 30 s; then exit 2.",
        min=1,
        max=20,
    )


@dataclass(frozen=True)
class SidecarConfig:
    server: ServerConfig = ServerConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    capture: CaptureConfig = CaptureConfig()
    redact: RedactConfig = RedactConfig()
    spool: SpoolConfig = SpoolConfig()
    store: StoreConfig = StoreConfig()

    def validate(self) -> None:
        """Cross-field checks that one field's bounds cannot express."""
        up = urlsplit(self.upstream.url)
        if up.scheme not in ("http", "https") or not up.hostname:
            raise ConfigError(f"upstream.url={self.upstream.url!r}: expected http://host:port")
        if up.query or up.fragment:
            raise ConfigError(
                f"upstream.url={self.upstream.url!r}: must not have a query or fragment"
            )
        for key, value in (
            ("capture.endpoint_name", self.capture.endpoint_name),
            ("capture.variant_name", self.capture.variant_name),
        ):
            if not _NAME.match(value):
                raise ConfigError(
                    f"{key}={value!r}: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
        if not self.capture.modes:
            raise ConfigError("capture.modes is empty: give Input, Output or both")
        for key, types_ in (
            ("capture.csv_content_types", self.capture.csv_content_types),
            ("capture.json_content_types", self.capture.json_content_types),
        ):
            for ct in types_:
                if not _CONTENT_TYPE.match(ct):
                    raise ConfigError(f"{key}: {ct!r} is not a type/subtype content type")
        _check_headers(self.capture.headers)
        _check_redact(self.redact)
        if self.server.max_request_head_bytes < self.server.max_request_header_bytes:
            raise ConfigError(
                f"server.max_request_head_bytes={self.server.max_request_head_bytes} is below "
                f"server.max_request_header_bytes={self.server.max_request_header_bytes}"
            )
        if self.server.port != 0 and self.server.port == self.server.admin_port:
            raise ConfigError("server.port and server.admin_port must differ")
        scheme = urlsplit(self.store.destination).scheme
        if scheme not in ("s3", "file"):
            raise ConfigError(
                f"store.destination={self.store.destination!r}: expected s3://bucket/prefix or file:///dir"
            )
        if self.store.kms_key_id and self.store.sse != "aws:kms":
            raise ConfigError("store.kms_key_id is set but store.sse is not 'aws:kms'")


# Credentials: never copied into a record, whatever capture.headers says.
REFUSED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _check_headers(names: tuple[str, ...]) -> None:
    for name in names:
        if not _TOKEN.match(name):
            raise ConfigError(f"capture.headers: {name!r} is not a header name")
        if name.lower() in REFUSED_HEADERS:
            raise ConfigError(
                f"capture.headers: {name!r} carries credentials and is never captured; "
                "remove it (refused: Authorization, Proxy-Authorization, Cookie, Set-Cookie)"
            )


def _check_redact(redact: RedactConfig) -> None:
    from sidecar.redact import compile_path  # the path grammar lives with its evaluator

    for key, paths in (
        ("redact.input_json_paths", redact.input_json_paths),
        ("redact.output_json_paths", redact.output_json_paths),
    ):
        for path in paths:
            try:
                compile_path(path)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
    for key, columns in (
        ("redact.input_csv_columns", redact.input_csv_columns),
        ("redact.output_csv_columns", redact.output_csv_columns),
    ):
        for col in columns:
            if col < 0:
                raise ConfigError(f"{key}: column {col} is negative; columns count from 0")
    if redact.replacement == "hash":
        if bool(redact.hash_key) == (redact.hash_key_file is not None):
            raise ConfigError(
                "redact.replacement='hash' needs exactly one of redact.hash_key "
                "(MODELTAP_SIDECAR_REDACT_HASH_KEY) or redact.hash_key_file"
            )
        if redact.hash_key and len(redact.hash_key.encode()) < 16:
            raise ConfigError("redact.hash_key is shorter than 16 bytes")
    elif redact.hash_key or redact.hash_key_file is not None:
        raise ConfigError("a redact hash key is set but redact.replacement is not 'hash'")
