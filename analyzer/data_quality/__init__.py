"""Data quality and drift: the window's profile against the endpoint's baseline, as a section
(``section.DATA``): statistics.json, constraint_violations.json, drift.json, the per-feature part
of report.html and the feature metrics."""
