"""modeltap's analyzer: profiles, baselines (statistics.json + constraints.json) and drift.

Public API::

    from analyzer import Profile, ProfileConfig, profile, build_baseline, write_baseline
    prof = profile({"x": np.array([...]), "city": np.array([...], dtype=object)})
    window = profile(window_batches, baseline=prof)   # same columns, types and bin edges
    Profile.from_json(prof.to_json()).merge(window)
"""

from __future__ import annotations

from analyzer.baseline import build_baseline, profile, write_baseline
from analyzer.constraints import ConstraintOptions, suggest_constraints
from analyzer.errors import AnalyzerError, BaselineFormatError, DataError, ProfileError
from analyzer.inference import InferredType
from analyzer.profile import ColumnProfile, Profile, ProfileConfig
from analyzer.readers import ReadOptions
from analyzer.sources import DataSource

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
    "suggest_constraints",
    "write_baseline",
]
