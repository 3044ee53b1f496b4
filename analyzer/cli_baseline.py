"""``modeltap baseline``: profile a training dataset, write statistics.json and constraints.json.

``main(argv)`` parses the arguments (the ``modeltap`` console script dispatches
``modeltap baseline ...`` here) and returns the exit status: 0 on success, 1 when the data or a
setting is unusable (the message names file, line and column), 2 for a usage error.

    modeltap baseline train.csv -o baseline/
    modeltap baseline s3://bucket/train/ --format parquet -o s3://bucket/baseline/
    modeltap baseline data.csv --no-header --column-names age,income,label --label label -o out/
    modeltap baseline s3://bucket/train/ -o s3://bucket/baseline/ \
        --store-endpoint-url http://seaweedfs:8333 --store-path-style
    modeltap baseline s3://bucket/train/ -o out/ --engine dask --scheduler tcp://dask-scheduler:8786

S3 inputs and outputs go through ``sidecar.store``: credentials come from botocore's usual chain;
``--store-endpoint-url``, ``--store-region`` and ``--store-path-style`` (or the environment
variables ``MODELTAP_ANALYZER_STORE_ENDPOINT_URL``, ``_REGION``, ``_PATH_STYLE``; a flag wins)
reach S3-compatible stores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.baseline import build_baseline, mismatch_report, write_baseline
from analyzer.constraints import ConstraintOptions
from analyzer.engine import open_engine
from analyzer.errors import AnalyzerError
from analyzer.inference import InferredType
from analyzer.profile import ProfileConfig
from analyzer.progress import Progress
from analyzer.readers import Format, ReadOptions
from analyzer.sources import DataSource
from sidecar.config import StoreConfig
from sidecar.errors import ModeltapError

STORE_ENV_PREFIX = "MODELTAP_ANALYZER_STORE_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _type_override(text: str) -> tuple[str, InferredType]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected COLUMN=TYPE, got {text!r}")
    try:
        return name, InferredType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in InferredType)
        raise argparse.ArgumentTypeError(
            f"type {value!r} for {name!r}: use one of {allowed}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modeltap baseline",
        description="Profile a training dataset and write SageMaker-format statistics.json and "
        "suggested constraints.json.",
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
    g = p.add_argument_group("input format")
    g.add_argument(
        "--format", choices=["csv", "jsonl", "parquet"], help="default: from each file's name"
    )
    g.add_argument(
        "--dataset-format",
        metavar="JSON",
        help='SageMaker dataset_format, e.g. \'{"csv": {"header": false}}\', \'{"json": {"lines": true}}\', '
        "'{\"parquet\": {}}'",
    )
    g.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="CSV has a header line (default)",
    )
    g.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="CSV has no header: columns _c0, _c1, ...",
    )
    g.add_argument("--delimiter", default=",", help="CSV field delimiter (default ,)")
    g.add_argument(
        "--column-names", metavar="A,B,...", help="CSV column names (replace the header or _cN)"
    )
    g.add_argument(
        "--null-value",
        action="append",
        metavar="TEXT",
        help="CSV text meaning missing (repeatable; default only the empty field). E.g. --null-value NA",
    )
    g.add_argument(
        "--block-mib", type=int, default=8, help="CSV/JSON bytes parsed at a time, MiB (default 8)"
    )
    g.add_argument(
        "--batch-rows", type=int, default=65536, help="Parquet rows per batch (default 65536)"
    )
    t = p.add_argument_group("types and roles")
    t.add_argument(
        "--type",
        action="append",
        type=_type_override,
        default=[],
        metavar="COLUMN=TYPE",
        help="fix a column's type: Integral, Fractional, String or Unknown (repeatable)",
    )
    t.add_argument("--label", help="name of the ground-truth label column")
    t.add_argument("--prediction", help="name of the model output column")
    q = p.add_argument_group(
        "model quality",
        "With --problem-type the dataset is a labelled validation set: --label and --prediction "
        "(or, binary, --probability) name its columns, and the output is the model-quality "
        "baseline (metrics as statistics.json, thresholds as constraints.json) that "
        "`modeltap monitor`'s [endpoints.quality] points at.",
    )
    q.add_argument(
        "--problem-type",
        choices=["Regression", "BinaryClassification", "MulticlassClassification"],
    )
    q.add_argument("--probability", help="binary: the column of the positive label's probability")
    q.add_argument(
        "--probability-threshold",
        type=float,
        default=0.5,
        metavar="F",
        help="binary: probability at or above which the label is positive (default 0.5)",
    )
    q.add_argument("--positive-label", help="binary: the positive label (default 1 / true / yes)")
    b = p.add_argument_group(
        "bias",
        "With --bias-facet the dataset is a labelled validation set with predictions (--label, "
        "--prediction or --probability): the output is the bias baseline (analysis.json with "
        "Clarify's post-training metrics, constraints.json with their allowed ranges).",
    )
    b.add_argument("--bias-facet", metavar="COLUMN", help="the sensitive attribute's column")
    b.add_argument(
        "--bias-facet-threshold",
        type=float,
        metavar="X",
        help="the disadvantaged group is the rows above X",
    )
    b.add_argument(
        "--bias-facet-values", metavar="A,B", help="... or the rows holding these categories"
    )
    b.add_argument("--bias-group", metavar="COLUMN", help="group variable for CDDPL")
    b.add_argument(
        "--bias-bootstrap", type=int, default=200, metavar="N", help="bootstrap resamples"
    )
    a = p.add_argument_group(
        "feature attribution",
        "With --attribution the dataset is training data: Kernel SHAP of a sample of it against "
        "the model at --model-url gives the baseline's global attributions (analysis.json) and "
        "the background rows the monitor reuses (background.json).",
    )
    a.add_argument("--attribution", action="store_true")
    a.add_argument(
        "--model-url", help="the model's scoring URL (e.g. http://model:8080/invocations)"
    )
    a.add_argument(
        "--model-content-type", choices=["text/csv", "application/json"], default="text/csv"
    )
    a.add_argument("--score-index", type=int, default=0, help="CSV responses: the score's column")
    a.add_argument("--score-path", help="JSON responses: the path of each row's score")
    a.add_argument("--features", metavar="A,B,...", help="the model's input columns, in order")
    a.add_argument("--background-k", type=int, default=5, help="k-means background rows")
    a.add_argument("--explain-rows", type=int, default=100, help="rows explained")
    a.add_argument("--nsamples", type=int, help="coalitions per row (default: all when few)")
    q.add_argument(
        "--window-rows",
        type=int,
        metavar="N",
        help="rows a monitoring window usually has: thresholds allow for its sampling noise",
    )
    t.add_argument(
        "--mixed-type-threshold",
        type=float,
        default=0.0,
        metavar="F",
        help="share of non-numeric values a numeric column may hold before it is a String "
        "(default 0.0, SageMaker's rule); such values are counted as type mismatches",
    )
    t.add_argument(
        "--allow-empty-columns",
        action="store_true",
        help="keep columns whose values are all missing (type Unknown) instead of failing",
    )
    c = p.add_argument_group("suggested constraints")
    c.add_argument(
        "--completeness-tolerance",
        type=float,
        default=0.0,
        metavar="F",
        help="subtract F from each observed completeness (default 0)",
    )
    c.add_argument(
        "--domain-max-values",
        type=int,
        default=20,
        metavar="N",
        help="String columns with at most N distinct values get a domain list (default 20)",
    )
    c.add_argument("--comparison-threshold", type=float, default=0.1, metavar="F")
    c.add_argument("--comparison-method", choices=["Simple", "Robust"], default="Robust")
    c.add_argument(
        "--categorical-drift-method", choices=["LInfinity", "ChiSquared"], default="LInfinity"
    )
    s = p.add_argument_group("summary sizes")
    s.add_argument(
        "--kll-k", type=int, default=2048, help="KLL sketch k (default 2048: 0.18%% CDF rank error)"
    )
    s.add_argument(
        "--bins",
        type=int,
        default=1000,
        help="quantile-anchored bins per numeric column (default 1000)",
    )
    s.add_argument(
        "--category-cap",
        type=int,
        default=10_000,
        help="distinct strings counted exactly (default 10000)",
    )
    s.add_argument(
        "--cpc-lg-k",
        type=int,
        default=12,
        help="log2 size of the distinct-count sketch (default 12)",
    )
    o = p.add_argument_group(
        "object store (s3:// inputs and output)",
        "Credentials come from botocore's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "AWS_PROFILE, web identity, instance metadata). Each flag defaults to the environment "
        f"variable {STORE_ENV_PREFIX}<NAME> (ENDPOINT_URL, REGION, PATH_STYLE); a flag wins.",
    )
    o.add_argument(
        "--store-endpoint-url",
        metavar="URL",
        help="endpoint of an S3-compatible store (SeaweedFS, MinIO, Ceph), e.g. "
        "http://127.0.0.1:8333 (default: AWS S3)",
    )
    o.add_argument(
        "--store-region",
        metavar="REGION",
        help="S3 region (default: botocore's, from AWS_REGION, AWS_DEFAULT_REGION or the profile)",
    )
    o.add_argument(
        "--store-path-style",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="path-style addressing (the bucket in the path, as most S3-compatible stores "
        "need; default off)",
    )
    e = p.add_argument_group(
        "scale-out",
        "Both passes profile file by file on a pool of local processes (default, one per usable core; "
        "a dataset under 32 MiB or a single file stays in this process) or on a Dask cluster.",
    )
    e.add_argument("--engine", choices=["local", "dask"], default="local")
    e.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default="",
        help="dask: the scheduler, e.g. tcp://dask-scheduler:8786 (default: start a LocalCluster)",
    )
    e.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="local processes, or LocalCluster workers (default: the usable cores the memory limit has room for; 1: in this process)",
    )
    p.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return p


def _dataset_format(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalyzerError(f"--dataset-format is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or len(doc) != 1:
        raise AnalyzerError(
            '--dataset-format must be one of {"csv": {...}}, {"json": {...}}, {"parquet": {}}'
        )
    kind, opts = next(iter(doc.items()))
    if kind not in ("csv", "json", "parquet") or not isinstance(opts, dict):
        raise AnalyzerError(f"--dataset-format: unsupported format {kind!r} (csv, json or parquet)")
    if kind == "json" and opts.get("lines", True) is not True:
        raise AnalyzerError(
            '--dataset-format: only JSON Lines is supported ({"json": {"lines": true}})'
        )
    return {"kind": kind, **opts}


def read_options(args: argparse.Namespace) -> ReadOptions:
    fmt: Format | None = args.format
    header = args.header
    if args.dataset_format:
        df = _dataset_format(args.dataset_format)
        fmt = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[df["kind"]]  # type: ignore[assignment]
        if header is None and "header" in df:
            header = bool(df["header"])
    names = tuple(n.strip() for n in args.column_names.split(",")) if args.column_names else None
    if args.block_mib < 1 or args.batch_rows < 1:
        raise AnalyzerError("--block-mib and --batch-rows must be at least 1")
    return ReadOptions(
        format=fmt,
        header=True if header is None else header,
        delimiter=args.delimiter,
        column_names=names,
        null_values=tuple(args.null_value) if args.null_value else ("",),
        block_bytes=args.block_mib << 20,
        batch_rows=args.batch_rows,
    )


def store_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> StoreConfig:
    """How to reach an S3 store: the --store-* flags, else MODELTAP_ANALYZER_STORE_* variables."""
    env = os.environ if env is None else env
    endpoint = args.store_endpoint_url
    if endpoint is None:
        endpoint = env.get(f"{STORE_ENV_PREFIX}ENDPOINT_URL", "")
    region = args.store_region
    if region is None:
        region = env.get(f"{STORE_ENV_PREFIX}REGION", "")
    path_style = args.store_path_style
    if path_style is None:
        raw = env.get(f"{STORE_ENV_PREFIX}PATH_STYLE", "").strip().lower()
        if raw not in _TRUE + _FALSE:
            raise AnalyzerError(f"{STORE_ENV_PREFIX}PATH_STYLE={raw!r}: expected true or false")
        path_style = raw in _TRUE
    # An empty region leaves it to botocore (StoreConfig's own default is the sidecar's).
    return StoreConfig(endpoint_url=endpoint.strip(), region=region.strip(), path_style=path_style)


def run_quality(args: argparse.Namespace) -> int:
    """The model-quality baseline of a labelled validation set."""
    from analyzer.baseline import dumps, write_documents
    from analyzer.quality.baseline import QualityColumns, build_quality_baseline
    from analyzer.quality.labels import ProblemType

    if not args.label:
        raise AnalyzerError("--problem-type needs --label (the ground-truth column)")
    columns = QualityColumns(
        ProblemType.parse(args.problem_type),
        label=args.label,
        prediction=args.prediction,
        probability=args.probability,
        probability_threshold=args.probability_threshold,
        positive_label=args.positive_label,
    )
    store = store_config(args)
    source = DataSource(args.inputs, read_options(args), store)
    wanted = [c for c in (args.label, args.prediction, args.probability) if c]
    stats, cons = build_quality_baseline(
        (chunk for _, chunk in source.chunks(wanted)), columns, window_rows=args.window_rows
    )
    names = write_documents(
        args.output,
        {"statistics.json": dumps(stats), "constraints.json": dumps(cons)},
        store_config=store,
    )
    if not args.quiet:
        section = stats[columns.problem_type.section]
        shown = ", ".join(
            f"{k} {v['value']:.4g}"
            for k, v in section.items()
            if isinstance(v, dict) and isinstance(v.get("value"), float)
        )
        print(f"{stats['dataset']['item_count']:,} labelled rows: {shown}", file=sys.stderr)
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


def _table(args: argparse.Namespace, columns: list[str] | None = None) -> Any:
    """The dataset as one Arrow table (bias and attribution baselines hold it in memory)."""
    import pyarrow as pa

    source = DataSource(args.inputs, read_options(args), store_config(args))
    parts = []
    for _, chunk in source.chunks(columns):
        batch = chunk.batch
        parts.append(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
    if not parts:
        raise AnalyzerError("the dataset has no rows")
    return pa.concat_tables(parts, promote_options="permissive")


def _column(table: Any, name: str) -> Any:
    if name not in table.column_names:
        raise AnalyzerError(
            f"column {name!r} is not in the dataset (columns: {', '.join(table.column_names)})"
        )
    return table.column(name).to_numpy(zero_copy_only=False)


def run_bias(args: argparse.Namespace) -> int:
    """The bias baseline of a labelled validation set with the model's predictions."""
    import numpy as np

    from analyzer.baseline import dumps, write_documents
    from analyzer.bias import Facet, compute, suggest_constraints

    if not args.label or not (args.prediction or args.probability):
        raise AnalyzerError("--bias-facet needs --label and --prediction (or --probability)")
    values = (
        tuple(v.strip() for v in args.bias_facet_values.split(","))
        if args.bias_facet_values
        else None
    )
    facet = Facet(args.bias_facet, values=values, threshold=args.bias_facet_threshold)
    table = _table(args)
    roles = {args.label, args.prediction, args.probability, args.bias_facet, args.bias_group}
    numeric = [
        n for n in table.column_names
        if n not in roles and np.issubdtype(np.asarray(_column(table, n)).dtype, np.number)
    ]  # fmt: skip
    features = np.column_stack([_column(table, n) for n in numeric]) if numeric else None
    report = compute(
        {facet.name: _column(table, facet.name)},
        [facet],
        y_pred=_column(table, args.prediction) if args.prediction else None,
        y_score=_column(table, args.probability) if not args.prediction else None,
        probability_threshold=args.probability_threshold,
        y_true=_column(table, args.label),
        positive_values=(args.positive_label or "1",),
        label=args.label,
        group=_column(table, args.bias_group) if args.bias_group else None,
        features=features,
        bootstrap=args.bias_bootstrap,
    )
    docs = {"analysis.json": dumps(report), "constraints.json": dumps(suggest_constraints(report))}
    names = write_documents(args.output, docs, store_config=store_config(args))
    if not args.quiet:
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


def run_attribution(args: argparse.Namespace) -> int:
    """The attribution baseline: Kernel SHAP of a training sample against the model."""
    import asyncio

    import numpy as np

    from analyzer.attribution.client import ModelClient, ModelClientConfig
    from analyzer.attribution.kernel_shap import KernelExplainer, explain_async, summarize
    from analyzer.attribution.ndcg import report
    from analyzer.attribution_run import sample_rows
    from analyzer.baseline import dumps, write_documents

    if not args.model_url:
        raise AnalyzerError("--attribution needs --model-url")
    table = _table(args)
    roles = {args.label, args.prediction, args.probability}
    names = (
        [n.strip() for n in args.features.split(",")]
        if args.features
        else [n for n in table.column_names if n not in roles]
    )
    x = np.column_stack([np.asarray(_column(table, n), dtype=np.float64) for n in names])
    background = summarize(x[np.isfinite(x).all(axis=1)], args.background_k, seed=0)
    explained = sample_rows(x, args.explain_rows, seed=0)
    explainer = KernelExplainer(background, nsamples=args.nsamples, seed=0)
    client = ModelClientConfig(
        args.model_url,
        content_type=args.model_content_type,
        score_index=None if args.score_path else args.score_index,
        score_path=args.score_path,
        rows_per_request=500,
        requests_per_second=50.0,
    )

    async def explain() -> Any:
        async with ModelClient(client) as c:
            return await explain_async(explainer, explained, c.predict)

    doc = report(asyncio.run(explain()), names)
    back = {
        "features": names,
        "rows": background.rows.tolist(),
        "weights": background.weights.tolist(),
        "nsamples": args.nsamples,
    }
    docs = {"analysis.json": dumps(doc), "background.json": dumps(back)}
    written = write_documents(args.output, docs, store_config=store_config(args))
    if not args.quiet:
        print("\n".join(f"wrote {n}" for n in written), file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.problem_type:
        return run_quality(args)
    if args.bias_facet:
        return run_bias(args)
    if args.attribution:
        return run_attribution(args)
    options = read_options(args)
    store = store_config(args)
    config = ProfileConfig(
        kll_k=args.kll_k,
        n_bins=args.bins,
        category_cap=args.category_cap,
        cpc_lg_k=args.cpc_lg_k,
        mixed_type_threshold=args.mixed_type_threshold,
        type_overrides=dict(args.type),
        label=args.label,
        prediction=args.prediction,
    )
    constraints = ConstraintOptions(
        completeness_tolerance=args.completeness_tolerance,
        domain_max_values=args.domain_max_values,
        comparison_threshold=args.comparison_threshold,
        comparison_method=args.comparison_method,
        categorical_comparison_threshold=args.comparison_threshold,
        categorical_drift_method=args.categorical_drift_method,
    )
    source = DataSource(args.inputs, options, store)
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    progress = Progress(source.total_bytes, enabled=False if args.quiet else enabled)
    try:
        engine = open_engine(args.engine, scheduler=args.scheduler, workers=args.workers)
    except ValueError as exc:
        raise AnalyzerError(f"--engine {args.engine}: {exc}") from exc
    try:
        prof = build_baseline(
            source,
            config,
            allow_unknown=args.allow_empty_columns,
            progress=progress,
            engine=engine,
        )
    finally:
        engine.close()
    stats_path, cons_path = write_baseline(prof, args.output, constraints, store_config=store)
    if not args.quiet:
        types = prof.inferred_types()
        summary = ", ".join(
            f"{sum(1 for v in types.values() if v is t)} {t.value}"
            for t in InferredType
            if any(v is t for v in types.values())
        )
        print(
            f"profiled {prof.item_count:,} rows x {len(prof.columns)} columns ({summary})",
            file=sys.stderr,
        )
        for note in mismatch_report(prof):
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {stats_path}\nwrote {cons_path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``modeltap baseline``; returns the exit status."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help (0) or a usage error (2): argparse already printed it
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return run(args)
    except ModeltapError as exc:
        print(f"modeltap baseline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmodeltap baseline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
