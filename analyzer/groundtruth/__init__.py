"""Ground truth for model-quality monitoring: labels in, predictions joined with them.

- :mod:`.records`: parse SageMaker ground-truth JSON Lines into id/label columns.
- :mod:`.layout`: where labels live (by collection hour) and which a run reads.
- :mod:`.ingest`: ``POST /ground-truth``, writing each accepted request durably to the store.
- :mod:`.predictions`: read each row's prediction from capture records.
- :mod:`.merge`: join the predictions with labels by id.
"""

from analyzer.groundtruth.ingest import (
    IngestConfig,
    IngestCounters,
    Ingestor,
    IngestorClosed,
    add_ground_truth_route,
    make_ground_truth_handler,
)
from analyzer.groundtruth.layout import (
    DEFAULT_LABEL_DELAY,
    label_key,
    label_window,
    list_labels,
    load_labels,
)
from analyzer.groundtruth.merge import MergeResult, merge
from analyzer.groundtruth.predictions import MergeStats, PredictionSpec
from analyzer.groundtruth.records import (
    REASONS,
    Labels,
    LabelStats,
    parse_labels,
    parse_line,
    read_labels,
)
from modeltap.core.jsonpath import compile_path

__all__ = [
    "DEFAULT_LABEL_DELAY",
    "REASONS",
    "IngestConfig",
    "IngestCounters",
    "Ingestor",
    "IngestorClosed",
    "LabelStats",
    "Labels",
    "MergeResult",
    "MergeStats",
    "PredictionSpec",
    "add_ground_truth_route",
    "compile_path",
    "label_key",
    "label_window",
    "list_labels",
    "load_labels",
    "make_ground_truth_handler",
    "merge",
    "parse_labels",
    "parse_line",
    "read_labels",
]
