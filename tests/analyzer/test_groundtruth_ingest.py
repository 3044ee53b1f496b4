"""The ground-truth endpoint on a real aiohttp server (127.0.0.1, port picked at run time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from analyzer.groundtruth.ingest import (
    IngestConfig,
    Ingestor,
    IngestorClosed,
    add_ground_truth_route,
)
from modeltap.core.errors import StoreError
from modeltap.core.store.local import LocalStore

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECEIVED = dt.datetime(2024, 5, 6, 7, 8, 9, 123_000, tzinfo=dt.UTC)
TARGET = {"endpoint": "churn", "variant": "AllTraffic"}


def line(event_id: str, label: str = "1") -> bytes:
    return orjson.dumps(
        {"groundTruthData": {"data": label, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id},
         "eventVersion": "0"}
    )  # fmt: skip


@dataclass
class Server:
    url: str
    ingestor: Ingestor
    store: Any
    root: Path
    session: aiohttp.ClientSession

    def post(self, body: bytes, *, params: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        return self.session.post(
            f"{self.url}/ground-truth",
            data=body,
            params=TARGET if params is None else params,
            headers=AUTH if headers is None else headers,
        )

    def objects(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


class FailingStore(LocalStore):
    async def put(self, key: str, data: bytes, *, content_type: str,
                  content_encoding: str | None = None) -> None:  # fmt: skip
        raise StoreError("backend down", reason="server_error")


Start = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def go(config: IngestConfig, store_cls: type[LocalStore] = LocalStore) -> Server:
        root = tmp_path / f"store{len(runners)}"
        root.mkdir()
        store = store_cls(root)
        ingestor = Ingestor(store, config, now=lambda: RECEIVED)
        app = web.Application()
        add_ground_truth_route(app, ingestor)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Server(f"http://127.0.0.1:{port}", ingestor, store, root, session)

    yield go
    for s in sessions:
        await s.close()
    for r in runners:
        await r.cleanup()


def config(**kw: Any) -> IngestConfig:
    return IngestConfig(**{"token": TOKEN, "prefix": "gt", "linger_seconds": 0.0, **kw})


async def test_accepted_lines_land_exactly_in_one_object(start: Start) -> None:
    srv = await start(config())
    body = line("a") + b"\r\n\n" + line("b", "0") + b"\n  \n" + line("c")  # no final newline
    async with srv.post(body, headers={**AUTH, "Content-Type": "application/x-ndjson"}) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["accepted"] == 3
    key = answer["key"]
    assert re.fullmatch(r"gt/churn/AllTraffic/2024/05/06/07/08-09-123-[0-9a-f-]{36}\.jsonl", key)
    assert srv.objects() == {key: line("a") + b"\n" + line("b", "0") + b"\n" + line("c") + b"\n"}
    c = srv.ingestor.counters
    assert (c.accepted_requests, c.accepted_records, c.objects_written) == (1, 3, 1)
    assert c.rejected_requests == {}


async def test_disabled_without_token(start: Start) -> None:
    for token in (None, ""):
        srv = await start(config(token=token))
        async with srv.post(line("a")) as resp:
            assert resp.status == 404
        assert srv.objects() == {}
        assert srv.ingestor.counters.rejected_requests == {"disabled": 1}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"}],
)  # fmt: skip
async def test_wrong_or_missing_token_is_401(start: Start, headers: dict[str, str]) -> None:
    srv = await start(config())
    async with srv.post(line("a"), headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert srv.objects() == {}
    assert srv.ingestor.counters.rejected_requests == {"unauthorized": 1}


async def test_scheme_is_case_insensitive(start: Start) -> None:
    srv = await start(config())
    async with srv.post(line("a"), headers={"Authorization": f"bearer {TOKEN}"}) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    "params",
    [{}, {"endpoint": "churn"}, {"variant": "v"}, {"endpoint": "../etc", "variant": "v"},
     {"endpoint": "a/b", "variant": "v"}, {"endpoint": "churn", "variant": ".."}],
)  # fmt: skip
async def test_endpoint_and_variant_are_required_path_safe_names(
    start: Start, params: dict[str, str]
) -> None:
    srv = await start(config())
    async with srv.post(line("a"), params=params) as resp:
        assert resp.status == 400
        assert "endpoint and variant" in (await resp.json())["error"]
    assert srv.objects() == {}


async def test_targets_allow_list(start: Start) -> None:
    srv = await start(config(targets=frozenset({("churn", "AllTraffic")})))
    async with srv.post(line("a"), params={"endpoint": "churn", "variant": "B"}) as resp:
        assert resp.status == 400
    async with srv.post(line("a")) as resp:
        assert resp.status == 200
    assert srv.ingestor.counters.rejected_requests == {"unknown_target": 1}


async def test_body_over_the_limit_is_413_declared_or_streamed(start: Start) -> None:
    srv = await start(config(max_body_bytes=1000))
    big = b"\n".join(line(f"id{i}") for i in range(40))
    assert len(big) > 1000
    async with srv.post(big) as resp:  # Content-Length declared
        assert resp.status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(40):
            yield line(f"id{i}") + b"\n"

    async with srv.session.post(
        f"{srv.url}/ground-truth", data=chunks(), params=TARGET, headers=AUTH
    ) as resp:  # chunked: no length to check up front
        assert resp.status == 413
    assert srv.objects() == {}
    assert srv.ingestor.counters.rejected_requests == {"too_large": 2}
    small = b"\n".join(line(f"id{i}") for i in range(5))
    async with srv.post(small) as resp:
        assert resp.status == 200


async def test_any_bad_line_rejects_the_whole_request(start: Start) -> None:
    srv = await start(config())
    no_id = orjson.dumps({"groundTruthData": {"data": "1"}, "eventMetadata": {}})
    no_data = orjson.dumps({"eventMetadata": {"eventId": "x"}})
    body = b"\n".join([line("a"), no_id, line("b"), b"{oops", b"", no_data])
    async with srv.post(body) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["bad_lines"] == 3
    assert answer["lines"] == [
        {"line": 2, "reason": "missing_event_id"},
        {"line": 4, "reason": "bad_json"},
        {"line": 6, "reason": "missing_data"},
    ]
    assert "nothing was stored" in answer["error"]
    assert srv.objects() == {}
    c = srv.ingestor.counters
    assert c.rejected_requests == {"invalid_lines": 1}
    assert c.rejected_lines == {"missing_event_id": 1, "bad_json": 1, "missing_data": 1}
    assert c.accepted_records == 0


async def test_reported_lines_are_capped(start: Start) -> None:
    srv = await start(config(max_reported_errors=2))
    async with srv.post(b"x\ny\nz\n") as resp:
        answer = await resp.json()
    assert answer["bad_lines"] == 3 and [e["line"] for e in answer["lines"]] == [1, 2]


async def test_empty_body_is_400(start: Start) -> None:
    srv = await start(config())
    async with srv.post(b"\n \n") as resp:
        assert resp.status == 400
    assert srv.ingestor.counters.rejected_requests == {"empty": 1}


async def test_gzip_content_encoding_is_undone(start: Start) -> None:
    srv = await start(config())
    body = line("a") + b"\n"
    async with srv.post(gzip.compress(body), headers={**AUTH, "Content-Encoding": "gzip"}) as resp:
        assert resp.status == 200
        key = (await resp.json())["key"]
    assert srv.objects() == {key: body}


async def test_store_failure_is_503_and_nothing_claimed(start: Start) -> None:
    srv = await start(config(), FailingStore)
    async with srv.post(line("a")) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
    c = srv.ingestor.counters
    assert (c.store_errors, c.accepted_records, c.accepted_requests) == (1, 0, 0)
    assert c.rejected_requests == {"store_error": 1}


async def test_concurrent_requests_share_one_object(start: Start) -> None:
    # The first request waits in the batch until the second fills it (no timing involved).
    srv = await start(config(linger_seconds=30.0, max_batch_records=3))

    async def send(body: bytes) -> dict[str, Any]:
        async with srv.post(body) as resp:
            assert resp.status == 200
            return await resp.json()  # type: ignore[no-any-return]

    answers = await asyncio.gather(send(line("a")), send(line("b") + b"\n" + line("c")))
    assert answers[0]["key"] == answers[1]["key"]
    (data,) = srv.objects().values()
    assert sorted(data.splitlines()) == sorted([line("a"), line("b"), line("c")])
    c = srv.ingestor.counters
    assert (c.accepted_requests, c.accepted_records, c.objects_written) == (2, 3, 1)


async def test_full_batch_is_written_early_and_requests_are_never_split(start: Start) -> None:
    srv = await start(config(linger_seconds=30.0, max_batch_records=3))
    # Two records then two more: the second request would overflow, so the first batch is
    # written on its own; the second waits for its own batch, written on close.
    first = asyncio.create_task(srv.ingestor.submit("e", "v", [line("a"), line("b")]))
    await asyncio.sleep(0)
    second = asyncio.create_task(srv.ingestor.submit("e", "v", [line("c"), line("d")]))
    key1 = await asyncio.wait_for(first, 5)
    assert not second.done()
    await srv.ingestor.close()  # close flushes what is pending
    key2 = await second
    objects = srv.objects()
    assert objects[key1] == line("a") + b"\n" + line("b") + b"\n"
    assert objects[key2] == line("c") + b"\n" + line("d") + b"\n"
    # An oversized request goes whole into one object.
    ingestor = Ingestor(srv.store, config(max_batch_records=2, linger_seconds=30.0))
    key3 = await asyncio.wait_for(ingestor.submit("e", "v", [line("x")] * 5), 5)
    assert srv.objects()[key3].count(b"\n") == 5
    with pytest.raises(IngestorClosed):
        await srv.ingestor.submit("e", "v", [line("z")])


async def test_closed_ingestor_answers_503(start: Start) -> None:
    srv = await start(config())
    await srv.ingestor.close()
    async with srv.post(line("a")) as resp:
        assert resp.status == 503
    assert srv.ingestor.counters.rejected_requests == {"closed": 1}


async def test_linger_writes_a_partial_batch(start: Start) -> None:
    srv = await start(config(linger_seconds=0.05))
    async with srv.post(line("a")) as resp:
        assert resp.status == 200
        key = (await resp.json())["key"]
    assert srv.objects() == {key: line("a") + b"\n"}


async def test_a_cancelled_waiter_does_not_cancel_its_batch(start: Start) -> None:
    srv = await start(config(linger_seconds=30.0, max_batch_records=2))
    lonely = asyncio.create_task(srv.ingestor.submit("e", "v", [line("a")]))
    await asyncio.sleep(0)
    mate = asyncio.create_task(srv.ingestor.submit("e", "v", [line("b")]))
    await asyncio.sleep(0)
    lonely.cancel()
    key = await asyncio.wait_for(mate, 5)
    assert srv.objects()[key] == line("a") + b"\n" + line("b") + b"\n"
