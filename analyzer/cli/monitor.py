"""``modeltap monitor``: parse the options, load monitor.toml, run :mod:`analyzer.monitor`.

Exit status: 0 when every run completed (with or without violations, or without data), 1 when
one failed (``--once``), 2 on bad configuration (one line: a file key, a variable, an option, a
baseline, an engine or a port).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from analyzer.config import ENV_PREFIX, MonitorConfig, load_config
from analyzer.engine import ENGINES, open_engine
from analyzer.monitor import run_forever, run_once, window_ending
from analyzer.window import Window
from modeltap.core.errors import ConfigError, ModeltapError
from modeltap.core.settings import OneLineParser, markdown_table


def _parse_time(text: str, flag: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{flag}={text!r}: expected an ISO-8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


FLAGS = {  # the monitor's own flags over its [monitor] keys
    "engine": "monitor.engine",
    "scheduler": "monitor.scheduler",
    "workers": "monitor.workers",
    "strict_constraints": "monitor.strict_constraints",
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="modeltap monitor",
        description="Analyse rolling windows of captured traffic, continuously or once.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the monitor's TOML file")
    parser.add_argument("--once", action="store_true", help="run one window per endpoint and exit")
    parser.add_argument("--start", help="with --once: window start (ISO-8601, UTC)")
    parser.add_argument(
        "--end", help="with --once: window end (ISO-8601, UTC; default now - offset)"
    )
    parser.add_argument("--engine", metavar="|".join(ENGINES), help="overrides [monitor] engine")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="overrides [monitor] scheduler")
    parser.add_argument("--workers", metavar="N", help="overrides [monitor] workers")
    parser.add_argument(
        "--strict-constraints",
        action="store_const",
        const="true",
        help="refuse a constraints.json with a key the checks do not read (default: warn)",
    )
    parser.add_argument(
        "--help-config", action="store_true", help="print every monitor.toml key and exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--help-config" in args_list:
        print(markdown_table(MonitorConfig, ENV_PREFIX))
        return 0
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a usage error (2): already printed in one line
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        flags = {
            key: (f"--{name.replace('_', '-')}", getattr(args, name))
            for name, key in FLAGS.items()
            if getattr(args, name) is not None
        }
        cfg = load_config(args.config, flags=flags)
        window = window_ending(dt.datetime.now(dt.UTC), cfg)
        if args.end or args.start:
            end = _parse_time(args.end, "--end") if args.end else window.end
            start = (
                _parse_time(args.start, "--start")
                if args.start
                else end - dt.timedelta(minutes=cfg.monitor.window_minutes)
            )
            window = Window(start, end)
    except ConfigError as exc:
        print(f"modeltap monitor: configuration error: {exc}", file=sys.stderr)
        return 2

    try:
        engine = open_engine(
            cfg.monitor.engine, scheduler=cfg.monitor.scheduler, workers=cfg.monitor.workers
        )
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"modeltap monitor: engine {cfg.monitor.engine}: {exc}", file=sys.stderr)
        return 2

    try:
        if args.once:
            return asyncio.run(run_once(cfg, window, engine))
        asyncio.run(run_forever(cfg, engine))
        return 0
    except ModeltapError as exc:
        print(f"modeltap monitor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        engine.close()


if __name__ == "__main__":
    raise SystemExit(main())
