"""Write deploy/base/prometheusrule.yaml from deploy/prometheus/rules.yml (the same rule groups).

Run ``.venv/bin/python -m tests.deploy.regen_prometheusrule`` after editing rules.yml;
tests/deploy/test_prometheus.py fails while the two differ.
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.procs import REPO

RULES = REPO / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_RULE = REPO / "deploy" / "base" / "prometheusrule.yaml"

HEADER = """\
# Generated from deploy/prometheus/rules.yml (the same rule groups, for the Prometheus Operator).
# Edit rules.yml, then run: .venv/bin/python -m tests.deploy.regen_prometheusrule
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    groups: Any = yaml.safe_load(RULES.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "modeltap"},
        "spec": {"groups": groups},
    }
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return HEADER + body


if __name__ == "__main__":
    PROMETHEUS_RULE.write_text(render())
    print(f"wrote {PROMETHEUS_RULE.relative_to(REPO)}")
