"""The ``genai`` section of the sidecar's configuration: OpenAI-compatible endpoints.

Kept apart from :mod:`sidecar.config` (which holds the other sections) so the gen_ai settings and
their checks live with the feature; :class:`~sidecar.config.SidecarConfig` includes the section.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


@dataclass(frozen=True)
class GenAIConfig:
    enabled: bool = setting(
        True,
        "Read OpenAI-compatible exchanges on genai.paths (on the spool writer's thread): the "
        "gen_ai fields of their records and the modeltap_sidecar_genai_* metrics.",
    )
    paths: tuple[str, ...] = setting(
        ("/v1/chat/completions", "/v1/completions"),
        "Request paths (exact, without the query) answered OpenAI-style: JSON, Server-Sent Events "
        "(data: lines, data: [DONE]) or Ollama's NDJSON. Every exchange on them feeds the metrics; "
        "sampled ones also get a genai section in their record.",
    )
    max_models: int = setting(
        20,
        "Model names that get their own metric label (the first seen); later ones count as "
        "'other', so the series stay bounded.",
        min=1,
        max=1000,
    )


def check_genai(cfg: GenAIConfig) -> None:
    """Cross-field checks of the section (called by SidecarConfig.validate)."""
    for path in cfg.paths:
        if not path.startswith("/") or "?" in path:
            raise ConfigError(f"genai.paths: {path!r} is not a path (start with '/', no query)")
