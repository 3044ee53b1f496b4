"""The README's LLM walk-through, end to end with real parts: past exchanges of ``modeltap demo-llm``
(the official openai client) -> ``modeltap baseline --llm``; streamed traffic through two real
sidecars, one clean and one drifted (longer prompts, more refused topics, as ``modeltap demo
--llm`` drifts) -> ``modeltap monitor``: the drifted endpoint's LLM violations in its report and
in what Prometheus scrapes from the monitor, none for the clean one, and the sidecar's time to
first token in Prometheus."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from harness.procs import PYTHON, REPO, free_port, running
from harness.prometheus import prometheus
from modeltap.demo import _llm_prompt
from tests.conftest import SidecarProc
from tests.integration.test_llm_stream import client, demo_llm
from tests.support.records import read_records

pytestmark = pytest.mark.integration
__all__ = ["demo_llm"]  # the fixture

EXCHANGES = 60


def request(rng: random.Random, drifted: bool) -> dict[str, Any]:
    """A chat request as the demo's traffic sends it (same draws, same order)."""
    prompt = _llm_prompt(rng, drifted)
    return {"model": "demo-llm", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": rng.choice((16, 48, 64)), "temperature": 0.7}  # fmt: skip


def past_exchanges(base: str, path: Path, n: int) -> None:
    """A JSON Lines log of ``n`` clean exchanges, as an application might have kept them."""
    rng = random.Random(1)
    with client(base) as c, path.open("wb") as out:
        for _ in range(n):
            req = request(rng, drifted=False)
            resp = c.chat.completions.create(**req)
            out.write(orjson.dumps({"request": req, "response": resp.model_dump()}) + b"\n")


def stream_traffic(proxy: str, seed: int, drifted: bool) -> None:
    rng = random.Random(seed)
    with client(proxy) as c:
        for _ in range(EXCHANGES):
            stream = c.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **request(rng, drifted)
            )
            assert any(chunk.usage for chunk in stream)


def wait_records(store: Path, endpoint: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for key, r in read_records(store) if key.startswith(f"{endpoint}/")]
        if len(found) >= n:
            return
        assert time.monotonic() < deadline, f"{len(found)} of {n} records of {endpoint}"
        time.sleep(0.2)


def test_llm_drift_report_and_metrics_end_to_end(
    demo_llm: str, start_sidecar: Callable[..., SidecarProc], tmp_path: Path
) -> None:
    past = tmp_path / "past.jsonl"
    past_exchanges(demo_llm, past, 200)
    baseline = tmp_path / "llm-baseline"
    done = subprocess.run(
        [PYTHON, "-m", "modeltap", "baseline", "--llm", str(past), "-o", str(baseline)],
        cwd=REPO, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert b"200 exchanges" in done.stderr

    captures = tmp_path / "captures"
    sidecars = {}
    for name, seed, drifted in (("llm-ok", 2, False), ("llm-drift", 3, True)):
        sc = start_sidecar(demo_llm, "--capture.sample-percent", "100",
                           "--capture.endpoint-name", name, name=name, store=captures)  # fmt: skip
        stream_traffic(sc.proxy_url, seed, drifted)
        wait_records(captures, name, EXCHANGES)
        sidecars[name] = sc

    port = free_port()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[monitor]\ncaptures = "file://{captures}"\nreports = "file://{tmp_path}/reports"\n'
        f'window_minutes = 30\nend_offset_minutes = -5\ninterval_seconds = 3\nhost = "127.0.0.1"\n'
        f"port = {port}\n"
        + "".join(
            f'[[endpoints]]\nname = "{n}"\n[endpoints.llm]\nbaseline = "file://{baseline}"\n'
            for n in sidecars
        )
    )
    once = subprocess.run([PYTHON, "-m", "modeltap", "monitor", "--config", str(config), "--once"],
                          cwd=REPO, capture_output=True, timeout=180)  # fmt: skip
    assert once.returncode == 0, once.stderr.decode()
    found = {}
    for name in sidecars:
        (path,) = [  # the run's own directory (latest/ holds a copy)
            p
            for p in (tmp_path / "reports" / name).rglob("llm/constraint_violations.json")
            if "latest" not in p.parts
        ]
        doc = orjson.loads(path.read_bytes())
        found[name] = {(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]}
        run = orjson.loads((path.parent / "run.json").read_bytes())
        assert run["exchanges"] == EXCHANGES and run["unreadable"] == {}
    assert found["llm-ok"] == set()
    assert {("prompt_chars", "baseline_drift_check"), ("input_tokens", "baseline_drift_check"),
            ("refusal", "baseline_drift_check"),
            ("prompt_ngram", "baseline_drift_check")} <= found["llm-drift"]  # fmt: skip

    monitor_cmd = [PYTHON, "-m", "modeltap", "monitor", "--config", str(config)]
    scraped = {
        "analyzer": [f"127.0.0.1:{port}"],
        "sidecar": [urlsplit(sidecars["llm-drift"].admin_url).netloc],
    }
    with (
        running("monitor", monitor_cmd, tmp_path, f"http://127.0.0.1:{port}/healthz"),
        prometheus(scraped, tmp_path) as prom,
    ):
        prom.wait_value(
            'modeltap_analyzer_llm_violations{endpoint="llm-drift",descriptor="refusal",'
            'check="baseline_drift_check"}',
            1,
        )
        prom.wait_value(
            'modeltap_analyzer_llm_drift_detected{endpoint="llm-drift",descriptor="prompt_chars"}',
            1,
        )
        prom.wait_value('modeltap_analyzer_llm_exchanges{endpoint="llm-ok"}', EXCHANGES)
        prom.wait_value('sum(modeltap_analyzer_llm_violations{endpoint="llm-ok"}) or vector(0)', 0)
        prom.wait_value(
            'modeltap_sidecar_genai_time_to_first_token_seconds_count{model="demo-llm"}', EXCHANGES
        )
        refusals = prom.query(
            'modeltap_analyzer_llm_descriptor_mean{endpoint="llm-drift",descriptor="refusal"}'
        )
        assert float(refusals[0]["value"][1]) > 0.25  # type: ignore[index]
