"""The LLM section: descriptors of hand-made exchanges, the baseline `modeltap baseline --llm`
writes, and a monitoring run of an endpoint that has only [endpoints.llm]."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from analyzer.cli.baseline import main as baseline_main
from analyzer.config import load_config
from analyzer.exporter import AnalyzerCollector
from analyzer.job import run_window
from analyzer.llm.descriptors import DescriptorSettings, descriptor_table
from analyzer.llm.exchange import Exchange, Unreadable, from_line, from_record
from analyzer.results import NO_DATA, WITH_VIOLATIONS
from analyzer.target_loading import load_target
from analyzer.window import Window
from modeltap.core.errors import ConfigError
from modeltap.core.store.local import LocalStore
from modeltap.demo import _llm_prompt
from modeltap.demo_llm import answer

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def chat(prompt: str, reply: str, **request: Any) -> dict[str, Any]:
    """A request/response pair as an OpenAI-compatible server answers it (not streamed)."""
    req = {"model": "m", "messages": [{"role": "user", "content": prompt}], **request}
    resp = {
        "model": "m-2024",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
    }
    return {"request": req, "response": resp}


def column(exchanges: list[Exchange], name: str, **settings: Any) -> list[Any]:
    table = descriptor_table(exchanges, DescriptorSettings(**settings))
    return list(table.column(name).to_pylist())


def test_lengths_tokens_parameters_and_finish_reason() -> None:
    ex = from_line(chat("Hello there", "Hi!", temperature=0.3, max_tokens=20))
    t = descriptor_table([ex], DescriptorSettings()).to_pylist()[0]
    assert t["prompt_chars"] == 11 and t["completion_chars"] == 3
    assert (t["input_tokens"], t["output_tokens"], t["message_count"]) == (7, 3, 1)
    assert (t["model"], t["temperature"], t["max_tokens"]) == ("m-2024", 0.3, 20)
    assert t["finish_reason"] == "stop"
    assert t["json_valid"] is None  # JSON was not asked for
    assert t["time_to_first_token_ms"] is None and t["tokens_per_second"] is None


def test_refusals_by_default_and_by_configured_patterns() -> None:
    replies = ["I'm sorry, but I can't help with that request.", "I cannot assist with this.",
               "Sure! Here is a haiku.", "As an AI language model, I do not browse.",
               "Nope, go away."]  # fmt: skip
    exchanges = [from_line(chat("q", r)) for r in replies]
    assert column(exchanges, "refusal") == [1, 1, 0, 1, 0]
    assert column(exchanges, "refusal", refusal_patterns=(r"^nope\b",)) == [0, 0, 0, 0, 1]


def test_json_validity_only_when_json_was_asked_for() -> None:
    fmt = {"response_format": {"type": "json_object"}}
    exchanges = [
        from_line(chat("q", '{"a": [1, 2]}', **fmt)),
        from_line(chat("q", "```json\n{oops}\n```", **fmt)),
        from_line(chat("q", '{"a": 1}')),
    ]
    assert column(exchanges, "json_valid") == [1, 0, None]


def test_unicode_script_of_prompts() -> None:
    prompts = ["Hello world", "Привет, как дела?", "你好 世界", "Hello Привет мир там",
               "12345 !!!"]  # fmt: skip
    exchanges = [from_line(chat(p, "ok")) for p in prompts]
    assert column(exchanges, "prompt_script") == ["Latin", "Cyrillic", "CJK", "Mixed", "none"]


def test_personal_data_hits_use_the_sidecars_patterns() -> None:
    prompt = "mail jane@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111"
    not_card = "order 4111 1111 1111 1112 shipped"  # fails the Luhn check
    exchanges = [from_line(chat(prompt, "ok")), from_line(chat(not_card, "a@b.io"))]
    assert column(exchanges, "prompt_pii_hits") == [3, 0]
    assert column(exchanges, "completion_pii_hits") == [0, 1]
    assert column(exchanges, "prompt_pii_hits", pii_patterns=("email",)) == [1, 0]


def test_ngram_buckets_are_reproducible_and_bounded() -> None:
    same = [from_line(chat("the cat sat on the mat", "ok")) for _ in range(2)]
    first = column(same, "prompt_ngram", ngram_buckets=8)
    assert first[0] == first[1] and first[0].startswith("h")
    many = [from_line(chat(f"prompt number {i} about things", "ok")) for i in range(200)]
    buckets = set(column(many, "prompt_ngram", ngram_buckets=8))
    assert 1 < len(buckets) <= 8


def record(request: dict[str, Any], output: bytes, ctype: str, genai: dict[str, Any] | None,
           when: dt.datetime = T0) -> dict[str, Any]:  # fmt: skip
    """A capture record as the sidecar writes it."""
    streamed = ctype == "text/event-stream"
    rec: dict[str, Any] = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": orjson.dumps(request).decode(),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": ctype,
                "mode": "OUTPUT",
                "data": output.decode(),
                "encoding": "TEXT" if streamed else "JSON",
            },
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        "eventVersion": "0",
        "modeltap": {"status": 200, "path": "/v1/chat/completions"},
    }
    if genai is not None:
        rec["modeltap"]["genai"] = genai
    return rec


SSE = (
    b'data: {"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
    b'data: {"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"length"}]}'
    b'\n\ndata: {"model":"m","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)


def test_records_with_and_without_the_sidecars_genai_section() -> None:
    req = {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "hi"}]}  # fmt: skip
    genai = {"gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop",
                                         "parts": [{"type": "text", "content": "Hey"}]}],
             "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 1,
             "timeToFirstTokenMs": 40.0, "timePerOutputTokenMs": 20.0}  # fmt: skip
    read = from_record(record(req, SSE, "text/event-stream", genai))
    assert (read.completion, read.finish_reason, read.ttft_ms) == ("Hey", "stop", 40.0)
    assert read.message_count == 2 and read.prompt == "be brief\nhi"
    raw = from_record(record(req, SSE, "text/event-stream", None))  # the stream read here
    assert (raw.completion, raw.finish_reason, raw.output_tokens) == ("Hello", "length", 2)
    ollama = b'{"message":{"content":"a"},"done":false}\n{"message":{"content":"b"},"done":true,' \
             b'"done_reason":"stop","prompt_eval_count":3,"eval_count":2}\n'  # fmt: skip
    nd = from_record(record(req, ollama, "application/x-ndjson", None))
    assert (nd.completion, nd.input_tokens) == ("ab", 3)
    assert column([read], "tokens_per_second") == [50.0]
    with pytest.raises(Unreadable, match="no_messages_or_prompt"):
        from_record(record({"instances": [[1, 2]]}, b"[0.5]", "application/json", None))


def demo_pair(rng: random.Random, drifted: bool) -> dict[str, Any]:
    """One exchange of the demo's traffic (modeltap demo --llm), answered by demo-llm's model."""
    prompt = _llm_prompt(rng, drifted)
    max_tokens = rng.choice((16, 48, 64))
    ans = answer(prompt, max_tokens)
    pair = chat(prompt, "".join(ans.tokens), max_tokens=max_tokens, temperature=0.7)
    pair["response"]["choices"][0]["finish_reason"] = ans.finish_reason
    pair["response"]["usage"] = {"prompt_tokens": ans.prompt_tokens,
                                 "completion_tokens": len(ans.tokens)}  # fmt: skip
    pair["request"]["model"] = pair["response"]["model"] = "demo-llm"
    return pair


def write_baseline(tmp_path: Path) -> Path:
    rng = random.Random(1)
    lines = [orjson.dumps(demo_pair(rng, False)) for _ in range(200)]
    (tmp_path / "past.jsonl").write_bytes(b"\n".join([*lines, b"not json", b'{"a": 1}']))
    out = tmp_path / "llm-baseline"
    assert baseline_main(["--llm", str(tmp_path / "past.jsonl"), "-o", str(out), "-q"]) == 0
    return out


def test_baseline_from_past_exchanges(tmp_path: Path) -> None:
    out = write_baseline(tmp_path)
    llm = orjson.loads((out / "llm.json").read_bytes())
    assert llm["exchanges"] == 200
    assert llm["unreadable"] == {"not_json": 1, "not_an_exchange": 1}
    # Request logs have no timing and asked for no JSON: those descriptors are not baselined.
    assert "time_to_first_token_ms" not in llm["descriptors"]
    assert "json_valid" not in llm["descriptors"]
    assert {"prompt_chars", "refusal", "prompt_ngram"} <= set(llm["descriptors"])
    cons = orjson.loads((out / "constraints.json").read_bytes())
    ngram = next(f for f in cons["features"] if f["name"] == "prompt_ngram")
    assert ngram["monitoringConfigOverrides"]["categorical_drift_method"] == "ChiSquared"


def test_baseline_options_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.jsonl").write_text("{}\n")
    code = baseline_main(["--llm", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "o"),
                          "--llm-refusal-pattern", "(?<=x)y"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "refusal pattern" in err and len(err.strip().splitlines()) == 1
    code = baseline_main(["--llm", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "o")])
    assert code == 1 and "no OpenAI-compatible exchange" in capsys.readouterr().err
    code = baseline_main(["--llm", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "o"),
                          "--problem-type", "Regression", "--label", "y"])  # fmt: skip
    assert code == 2
    assert "the quality and llm baselines: one kind of baseline at a time" in (
        capsys.readouterr().err
    )


def test_an_endpoint_needs_a_baseline_unless_it_has_llm(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[monitor]\ncaptures = "file:///c"\nreports = "file:///r"\n'
                      '[[endpoints]]\nname = "a"\n')  # fmt: skip
    with pytest.raises(ConfigError, match="baseline is required"):
        load_config(config, environ={})


async def monitor_run(tmp_path: Path, baseline: Path, drifted: bool, seed: int) -> Any:
    tmp_path.mkdir()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{tmp_path}/captures"\nreports = "file://{tmp_path}/reports"\n'
        f'[[endpoints]]\nname = "chat"\n[endpoints.llm]\nbaseline = "file://{baseline}"\n'
    )
    cfg = load_config(config, environ={})
    target = await load_target(cfg.endpoints[0], cfg.store)
    captures = LocalStore(tmp_path / "captures")
    rng = random.Random(seed)
    lines = []
    for i in range(60):
        pair = demo_pair(rng, drifted)
        body = orjson.dumps(pair["response"])
        when = T0 + dt.timedelta(seconds=30 * i)
        lines.append(orjson.dumps(record(pair["request"], body, "application/json", None, when)))
    await captures.put(
        "chat/AllTraffic/2026/03/01/10/00-00-000-a.jsonl", b"\n".join(lines), content_type="x"
    )
    reports = LocalStore(tmp_path / "reports")
    return await run_window(captures, reports, target, Window(T0, T0 + dt.timedelta(hours=1)))


async def test_a_drifted_window_violates_and_a_clean_one_does_not(tmp_path: Path) -> None:
    baseline = write_baseline(tmp_path)
    clean = await monitor_run(tmp_path / "clean", baseline, drifted=False, seed=2)
    assert clean.status != NO_DATA and clean.sections["llm"].exchanges == 60
    assert clean.sections["llm"].violations == []

    drift = await monitor_run(tmp_path / "drift", baseline, drifted=True, seed=3)
    assert drift.status == WITH_VIOLATIONS, drift.error
    found = {
        (v["feature_name"], v["constraint_check_type"]) for v in drift.sections["llm"].violations
    }
    assert {("prompt_chars", "baseline_drift_check"), ("refusal", "baseline_drift_check"),
            ("prompt_ngram", "baseline_drift_check")} <= found  # fmt: skip
    assert drift.sections["llm"].means["refusal"] > 0.25

    prefix = tmp_path / "drift" / "reports" / drift.report_prefix  # the run's own directory
    assert drift.report_prefix == "chat/AllTraffic/2026/03/01/11/2026-03-01T11-00-00Z"
    run = orjson.loads((prefix / "run.json").read_bytes())
    # no data baseline: data quality is not configured, so it neither runs nor counts
    assert run["violations_by_section"] == {"llm": len(found)}
    violations = orjson.loads((prefix / "llm" / "constraint_violations.json").read_bytes())
    assert {v["feature_name"] for v in violations["violations"]} >= {"prompt_chars", "refusal"}
    assert (prefix / "llm" / "statistics.json").exists() and (
        prefix / "llm" / "drift.json"
    ).exists()
    page = (prefix / "report.html").read_text()
    assert '<section id="llm"><h2>LLM prompts and answers</h2>' in page and "refusal" in page

    registry = CollectorRegistry()
    AnalyzerCollector(registry).record(drift)
    text = generate_latest(registry).decode()
    labels = 'endpoint="chat",model="",variant="AllTraffic"'
    assert f"modeltap_analyzer_llm_exchanges{{{labels}}} 60.0" in text
    assert (f'modeltap_analyzer_llm_violations{{check="baseline_drift_check",descriptor="refusal",'
            f"{labels}}} 1.0") in text  # fmt: skip
    assert f'modeltap_analyzer_llm_drift_detected{{descriptor="prompt_chars",{labels}}} 1.0' in text
