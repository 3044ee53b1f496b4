"""A/B: the variants of one endpoint compared with each other, a comparison stage
(``analyzer.comparison``; ``stage.VARIANTS``): variants.json, the variant_drift metrics and the
other variant's window drawn beside each feature of report.html."""
