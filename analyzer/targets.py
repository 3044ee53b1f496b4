"""What a monitoring run monitors: an endpoint's variant (or a batch job's dataset) and the
baseline and checks it is held against. Built by ``modeltap monitor`` from its configuration,
read by the job, the scale-out workers and the variant comparison."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analyzer.profile import Profile
from analyzer.readers import Format


@dataclass(frozen=True)
class BatchDataset:
    """Tables a batch job wrote under a prefix (SageMaker's batch transform monitoring).

    Each row holds the job's inputs, and its outputs when the job joined them (columns by name,
    as in the baseline); model quality and bias read the columns named below. A run reads the objects of its window: those under the window's
    ``yyyy/mm/dd/hh/`` prefixes when ``partitioned``, else those last modified within it.
    """

    uri: str
    format: Format | None = None  # None: by file name (.csv, .jsonl/.json, .parquet, + .gz)
    header: bool = True  # CSV: the first line holds the column names
    partitioned: bool = False
    # The columns model quality and bias read from each row (analyzer.batch_rows): the ground
    # truth, the model's predicted label and its probability, and the row id by which ground
    # truth is joined from the labels store when no label column is given.
    label_column: str = ""
    prediction_column: str = ""
    probability_column: str = ""
    id_column: str = ""


@dataclass(frozen=True)
class Target:
    """What one run monitors: an endpoint's variant against its own baseline."""

    endpoint: str
    variant: str
    baseline: Profile
    constraints: Mapping[str, Any]
    target_model: str = ""  # one model of a multi-model server ("" = every record)
    output_columns: tuple[str, ...] = ()  # baseline columns read from endpointOutput, in order
    preprocessor: Callable[..., Any] | None = None  # SageMaker's preprocess_handler
    post_analytics: Callable[[dict[str, Any]], Any] | None = None  # postprocess_handler
    batch: BatchDataset | None = None  # read a batch job's dataset instead of captured traffic
    baseline_uri: str = ""  # where the baseline came from (variants sharing one are comparable)
    # each configured monitoring section's settings and baselines, by section name
    # (``analyzer.registry``; e.g. "quality": a QualityTarget), read by that section only
    sections: Mapping[str, Any] = field(default_factory=dict)
