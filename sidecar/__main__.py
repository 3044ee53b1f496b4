"""``python -m sidecar`` / ``modeltap sidecar``: run the capturing proxy."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from modeltap.core.errors import ConfigError, StoreConfigError
from modeltap.core.settings import load, markdown_table
from sidecar.config import ENV_PREFIX, SidecarConfig

T = TypeVar("T")

USAGE = """usage: modeltap sidecar [--config FILE.toml] [--section.field VALUE ...]
       modeltap sidecar --help-config

Runs the capturing reverse proxy. Every option is also an environment variable
MODELTAP_SIDECAR_<SECTION>_<FIELD>; --help-config lists them all.
"""


def load_config(argv: Sequence[str], environ: dict[str, str] | None = None) -> SidecarConfig:
    """Parse ``--config FILE`` plus ``--section.field`` flags over the environment."""
    args = list(argv)
    file: Path | None = None
    env = dict(os.environ if environ is None else environ)
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ConfigError("--config needs a file name")
        file = Path(args[i + 1])
        del args[i : i + 2]
    elif env.get("MODELTAP_SIDECAR_CONFIG"):
        file = Path(env.pop("MODELTAP_SIDECAR_CONFIG"))
    return load(SidecarConfig, env_prefix=ENV_PREFIX, environ=env, argv=args, file=file)


def configure_logging() -> None:
    level = os.environ.get("MODELTAP_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_event_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's default loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args and args[0] == "--help-config":
        print(markdown_table(SidecarConfig, ENV_PREFIX))
        return 0
    configure_logging()
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"modeltap sidecar: configuration error: {exc}", file=sys.stderr)
        return 2
    from sidecar.app import serve
    from sidecar.memory import trim_threshold_for, tune_malloc

    tune_malloc(trim_threshold=trim_threshold_for(config.capture.queue_max_bytes))
    try:
        return int(run_event_loop(lambda: serve(config)))
    except StoreConfigError as exc:
        print(f"modeltap sidecar: store error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"modeltap sidecar: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
