"""``modeltap baseline``: profile a training dataset, write statistics.json and constraints.json.

``main(argv)`` parses the arguments (the ``modeltap`` console script dispatches
``modeltap baseline ...`` here), builds the options (:mod:`analyzer.baseline_config`) and runs
:mod:`analyzer.baseline_run`; it returns the exit status: 0 on success, 1 when the data is
unusable (the message names file, line and column), 2 for a usage or configuration error (bad
options or variables, store settings, an engine that cannot be reached), always as one line.

    modeltap baseline train.csv -o baseline/
    modeltap baseline s3://bucket/train/ --format parquet -o s3://bucket/baseline/
    modeltap baseline data.csv --no-header --column-names age,income,label --label label -o out/
    modeltap baseline s3://bucket/train/ -o s3://bucket/baseline/ \\
        --store-endpoint-url http://seaweedfs:8333 --store-path-style
    modeltap baseline s3://bucket/train/ -o out/ --engine dask --scheduler tcp://dask-scheduler:8786
    modeltap baseline --llm past-exchanges.jsonl -o s3://bucket/baselines/chat/

Every option but INPUT, -o, --progress and -q is also an environment variable
``MODELTAP_BASELINE_<SECTION>_<FIELD>`` (``--help-config`` lists them); a flag wins. The store's
also keep their earlier names ``MODELTAP_ANALYZER_STORE_ENDPOINT_URL``, ``_REGION`` and
``_PATH_STYLE``, below both.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from analyzer.baseline_config import ENV_PREFIX, BaselineConfig, load_baseline_config
from analyzer.baseline_run import run
from modeltap.core.errors import ConfigError, ModeltapError
from modeltap.core.settings import OneLineParser, add_arguments, markdown_table


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="modeltap baseline",
        description="Profile a training dataset and write SageMaker-format statistics.json and "
        "suggested constraints.json. Every option is also an environment variable "
        f"{ENV_PREFIX}<SECTION>_<FIELD>; --help-config lists them.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, directories, globs, or s3://bucket/prefix",
    )
    p.add_argument(
        "-o", "--output", required=True, help="directory or store URI (s3://, file://) to write to"
    )
    add_arguments(p, BaselineConfig)
    p.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--help-config", action="store_true", help="print every option's table and exit")
    return p


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of ``modeltap baseline``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help-config" in argv:
        print(markdown_table(BaselineConfig, ENV_PREFIX))
        return 0
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): already printed in one line
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = load_baseline_config(args, os.environ if environ is None else environ)
        job = config.job(tuple(args.inputs), args.output, args.progress, args.quiet)
        return run(job)
    except ConfigError as exc:
        print(f"modeltap baseline: configuration error: {exc}", file=sys.stderr)
        return 2
    except ModeltapError as exc:
        print(f"modeltap baseline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmodeltap baseline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
