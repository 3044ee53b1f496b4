"""The dev harness tests/ and bench/ share: real processes, ports, SeaweedFS, Prometheus, scrapes.

Dev-only: not in the wheel (pyproject's ``packages.find`` takes sidecar, analyzer and modeltap).
"""
