"""modeltap's analyzer: profiles, baselines (statistics.json + constraints.json) and drift.

Public API::

    from analyzer import Profile, ProfileConfig, profile, build_baseline, write_baseline
    from analyzer import profile_from_statistics, profile_to_statistics
    prof = profile({"x": np.array([...]), "city": np.array([...], dtype=object)})
    window = profile(window_batches, baseline=prof)   # same columns, types and bin edges
    doc = profile_to_statistics(prof)                 # statistics.json, SageMaker's format
    profile_from_statistics(doc).merge(window)
"""

from __future__ import annotations

from analyzer.baseline import build_baseline, profile, write_baseline
from analyzer.constraints import ConstraintOptions, suggest_constraints
from analyzer.errors import AnalyzerError, BaselineFormatError, DataError, ProfileError
from analyzer.inference import InferredType
from analyzer.profile import ColumnProfile, Profile, ProfileConfig
from analyzer.readers import ReadOptions
from analyzer.sources import DataSource
from analyzer.statistics import profile_from_statistics, profile_to_statistics

__all__ = [
    "AnalyzerError",
    "BaselineFormatError",
    "ColumnProfile",
    "ConstraintOptions",
    "DataError",
    "DataSource",
    "InferredType",
    "Profile",
    "ProfileConfig",
    "ProfileError",
    "ReadOptions",
    "build_baseline",
    "profile",
    "profile_from_statistics",
    "profile_to_statistics",
    "suggest_constraints",
    "write_baseline",
]
