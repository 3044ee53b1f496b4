"""The run report and the index page: structure, order, escaping, self-containment and size."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from analyzer.baseline import profile
from analyzer.checks import Evaluation, evaluate
from analyzer.data_quality.charts import CLIP_SHARE, cdf, display_edges
from analyzer.data_quality.features import feature_order
from analyzer.data_quality.result import DataResult
from analyzer.data_quality.section import DATA
from analyzer.evaluation import Violation
from analyzer.profile import Profile
from analyzer.quality.section import QUALITY
from analyzer.report_html import Fragment, doc_section, render_index, render_run, report_href
from analyzer.section import PageContext
from analyzer.variants.compare import VariantComparison
from analyzer.variants.stage import VARIANTS
from harness.drift_scenario import DRIFTED, generate

N = 100_000  # the drift scenario needs this many rows for all six drifts to be decided
VOID = {"meta", "br", "img", "hr", "input", "link", "col", "area", "base", "wbr", "source"}
EVIL = '<script>alert("x")</script>'


class Page(HTMLParser):
    """Tags in order, the text under each section, SVGs per feature, and nesting errors."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[tuple[str, str | None]] = []
        self.text: dict[str, str] = {}
        self.svgs: dict[str, int] = {}
        self.errors: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {[t for t, _ in self.stack]}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        key = None
        if tag == "section":
            key = a.get("id") or f"feature:{a.get('data-feature')}"
            self.svgs.setdefault(key, 0)
        if tag == "svg":
            for _, k in self.stack:
                if k is not None:
                    self.svgs[k] = self.svgs.get(k, 0) + 1
        if tag not in VOID:
            self.stack.append((tag, key))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unexpected </{tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        for _, key in self.stack:
            if key is not None:
                self.text[key] = self.text.get(key, "") + data

    def sections(self) -> list[str]:
        return [
            a.get("id") or f"feature:{a['data-feature']}" for t, a in self.tags if t == "section"
        ]

    def features(self) -> list[str]:
        return [a["data-feature"] for t, a in self.tags if t == "section" and "data-feature" in a]


@functools.cache
def scenario() -> tuple[Profile, Profile, Evaluation]:
    """The drift scenario (docs/drift.md §5): 25 features, 6 drifted (shared, read-only)."""
    base = profile(generate(N, 1, drift=False))
    window = profile(generate(N, 2, drift=True), baseline=base)
    return base, window, evaluate(base, None, window)


def summary(**kw: Any) -> dict[str, Any]:
    out = {
        "endpoint": "fraud-scorer",
        "variant": "AllTraffic",
        "target_model": "",
        "start_time": "2026-11-23T10:00:00+00:00",
        "end_time": "2026-11-23T11:00:00+00:00",
        "status": "CompletedWithViolations",
        "rows": N,
        "objects": 12,
        "bad_lines": 0,
        "unparsed_records": 3,
        "violations": 0,
    }
    out.update(kw)
    return out


@dataclass
class View:
    """One run's page as the reports write it: data quality's result, the other sections'
    fragments and the other variants compared (``analyzer.reports``)."""

    baseline: Profile
    data: DataResult
    summary: dict[str, Any]
    sections: list[Fragment] = field(default_factory=list)
    compared: list[VariantComparison] = field(default_factory=list)


def render(view: View) -> str:
    beside = {k: v for c in view.compared for k, v in VARIANTS.beside(c).items()}
    page = PageContext(view.summary, view.baseline, beside)
    data = replace(DATA.html(view.data, page), violations=DATA.violations(view.data))
    stages = [f for c in view.compared if (f := VARIANTS.html(c)) is not None]
    return render_run(view.summary, [data, *view.sections, *stages])


def compared(variant: str, drawn: Profile, this: Profile) -> VariantComparison:
    """``drawn``, the window of ``variant``, beside this run's (as variants.json compares them)."""
    between = evaluate(this, None, drawn)
    return VariantComparison("fraud-scorer", "AllTraffic", variant, N, N, evaluation=between,
                             reference_window=drawn)  # fmt: skip


def scenario_view(**kw: Any) -> View:
    base, window, ev = scenario()
    args: dict[str, Any] = {
        "baseline": base,
        "data": DataResult(window, None, ev),
        "summary": summary(violations=len(ev.violations)),
    }
    args.update(kw)
    return View(**args)


@pytest.fixture(scope="module")
def page() -> tuple[str, Page]:
    text = render(scenario_view())
    return text, Page(text)


def test_violations_come_before_the_features(page: tuple[str, Page]) -> None:
    _, p = page
    assert p.errors == []
    order = p.sections()
    assert order.index("violations") < order.index("features")
    assert order.index("features") < order.index("feature:normal_0")
    _, _, ev = scenario()
    for v in ev.violations:
        assert v.feature_name in p.text["violations"]
        assert v.constraint_check_type in p.text["violations"]
    for name in DRIFTED:  # the statistical decisions are listed there too
        assert name in p.text["violations"]


def test_drifted_features_first_then_by_distance(page: tuple[str, Page]) -> None:
    _, p = page
    _, _, ev = scenario()
    names = p.features()
    assert len(names) == 25 and names == feature_order(scenario()[0], ev, ev.violations)
    assert set(names[:6]) == DRIFTED
    drifted = [ev.features[n] for n in names[:6]]
    linf = [f.measures.linf_simple for f in drifted if f.measures is not None]
    violated = [bool(f.violations) for f in drifted]
    # Within the drifted ones: those with a violation first, each group by L-inf descending.
    assert violated == sorted(violated, reverse=True)
    for flag in (True, False):
        group = [d for d, v in zip(linf, violated, strict=True) if v is flag]
        assert group == sorted(group, reverse=True)
    for n in names:
        assert p.svgs[f"feature:{n}"] == 1, n
        assert "drift" in p.text[f"feature:{n}"] or n not in DRIFTED


def test_self_contained(page: tuple[str, Page]) -> None:
    text, p = page
    tags = {t for t, _ in p.tags}
    assert "script" not in tags and not tags & {"img", "link", "iframe", "object", "embed"}
    for _, attrs in p.tags:
        for k, v in attrs.items():
            assert not k.startswith("on"), k
            if k in ("src", "href", "xlink:href"):
                assert not v.startswith(("http://", "https://", "//")), v
    assert "url(" not in text and "@import" not in text
    assert (
        "default-src 'none'" in text
    )  # the CSP forbids scripts and fetches even if one slipped in


def test_size_of_25_features(page: tuple[str, Page]) -> None:
    text, _ = page
    size = len(text.encode())
    # Measured: 64.0 KB for these 25 features (20 numeric, 5 categorical); Evidently's is ~7 MB.
    assert size < 100_000, size


def test_escapes_everything_from_data() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    cats = np.array(["ok", EVIL, "a&b"], dtype=object)
    odd = 'x"><img src=y onerror=alert(1)>'
    data = {odd: rng.normal(0, 1, n), "kind": cats[rng.integers(0, 3, n)]}
    base = profile(data)
    window = profile(data, baseline=base)
    ev = evaluate(base, None, window)
    ev = replace(ev, violations=[Violation(odd, "data_type_check", f"<b>{EVIL}</b>")])
    view = View(
        base,
        DataResult(window, None, ev),
        summary(endpoint=EVIL, variant=odd, status=EVIL, error=EVIL),
        sections=[quality_fragment({EVIL: {EVIL: {"value": 1.0}}})],
        compared=[compared(EVIL, window, window)],
    )
    text = render(view)
    p = Page(text)
    assert p.errors == []
    tags = {t for t, _ in p.tags}
    assert "script" not in tags and "img" not in tags and "b" not in tags
    assert EVIL not in text and "<img" not in text
    assert f"<b>{EVIL}</b>" in p.text["violations"] and "a&b" in p.text[f"feature:{'kind'}"]
    assert odd in p.features()
    index = render_index(EVIL, [summary(variant=odd, status=EVIL)])
    assert EVIL not in index and "<img" not in index and Page(index).errors == []


def quality_fragment(doc: dict[str, Any]) -> Fragment:
    """Model quality's part of the page: model_quality.json's document drawn as its section."""
    return Fragment(doc_section(doc, QUALITY.name, QUALITY.title), doc.get("violations", []))


def test_run_without_data() -> None:
    base, _, _ = scenario()
    view = View(base, DataResult(), summary(status="NoData", rows=0))
    p = Page(render(view))
    assert p.errors == []
    assert "No constraint violations." in p.text["violations"]
    assert len(p.features()) == 25 and all(p.svgs[f"feature:{n}"] == 1 for n in p.features())


def test_comparison_and_quality() -> None:
    base, window, _ = scenario()
    other = profile(generate(20_000, 3, drift=False), baseline=base)
    quality = {
        "version": 0.0,
        "binary_classification_metrics": {
            "accuracy": {"value": 0.9123, "standard_deviation": 0.0021},
            "confusion_matrix": {"0": {"0": 10, "1": 2}, "1": {"0": 3, "1": 12}},
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": list(np.linspace(0, 1, 50)),
            },
        },
        "violations": [{"feature_name": "", "constraint_check_type": "accuracy",
                        "description": "Metric accuracy 0.91 fell below 0.95"}],
    }  # fmt: skip
    view = scenario_view(
        compared=[compared("Canary", other, window)], sections=[quality_fragment(quality)]
    )
    text = render(view)
    p = Page(text)
    assert p.errors == []
    order = p.sections()
    assert order.index("violations") < order.index("quality") < order.index("features")
    q = p.text["quality"]
    assert "accuracy" in q and "0.9123" in q and "± 0.0021" in q
    assert "confusion_matrix.0.1" in q and "(50 values)" in q and "fell below" in q
    assert "Canary" in p.text["comparisons"] and "Canary" in p.text["feature:normal_0"]
    # The third distribution: one more path per chart, drawn in the comparison's colour.
    assert text.count('stroke="#d9822b"') == 20  # every numeric feature


def test_histogram_reproduces_integer_counts_exactly() -> None:
    values = np.array([0] * 5 + [1] * 3 + [2] * 7 + [7] * 1, dtype=np.int64)
    base = profile({"k": values})
    s = base.columns["k"].numeric
    found = cdf(s, integral=True)
    assert found is not None
    edges = display_edges([found], integral=True)
    assert edges[0] == 0 and np.all(np.diff(edges) == 1)
    counts = np.diff(found.at(edges))
    assert counts[[0, 1, 2, 7]].tolist() == [5, 3, 7, 1] and counts.sum() == 16


def test_histogram_shares_sum_to_one_within_the_clip() -> None:
    base, window, _ = scenario()
    for name in ("normal_0", "lognormal_4", "uniform_3"):
        cdfs = [c for p in (base, window) if (c := cdf(p.columns[name].numeric, False))]
        edges = display_edges(cdfs, integral=False)
        assert len(edges) == 31
        for c in cdfs:
            inside = float(np.diff(c.at(edges)).sum()) / c.total
            assert 1.0 - 2 * CLIP_SHARE - 1e-9 <= inside <= 1.0 + 1e-9


def test_index_newest_first_with_relative_links() -> None:
    runs = [
        summary(end_time="2026-11-23T11:00:00+00:00", start_time="2026-11-23T10:00:00+00:00"),
        summary(end_time="2026-11-23T13:00:00+00:00", start_time="2026-11-23T12:00:00+00:00",
                status="Completed", violations=0),
        summary(end_time="2026-11-23T12:00:00+00:00", start_time="2026-11-23T11:00:00+00:00",
                variant="Canary B", target_model="m1.tar.gz", status="Failed"),
    ]  # fmt: skip
    text = render_index("fraud-scorer", runs)
    p = Page(text)
    assert p.errors == []
    hrefs = [a["href"] for t, a in p.tags if t == "a"]
    assert hrefs == [
        "AllTraffic/2026/11/23/13/report.html",
        "Canary%20B/m1.tar.gz/2026/11/23/12/report.html",
        "AllTraffic/2026/11/23/11/report.html",
    ]
    assert "script" not in {t for t, _ in p.tags}
    assert report_href({"href": "x/report.html"}) == "x/report.html"
    for bad in ("https://evil.example/r.html", "/abs/report.html", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            report_href({"href": bad})
    assert "No runs yet." in render_index("e", [])
