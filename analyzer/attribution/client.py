"""An async client that scores synthetic rows on the model server, gently.

Kernel SHAP needs many model calls (rows x coalitions x background rows), sent to the same
server that answers production traffic. So the client bounds what it asks of it:

* ``rows_per_request`` rows per HTTP request (CSV lines, or JSON ``{"instances": [...]}``);
* at most ``max_concurrency`` requests in flight (a semaphore);
* at most ``requests_per_second`` request starts, with bursts of ``burst`` (a token bucket
  shared by every request and retry of the client);
* a ``timeout_seconds`` per attempt, and ``retries`` with exponential backoff on connection
  errors, timeouts, 429 and 5xx. Other statuses fail at once: a 400 does not get better.

Scores are read from the response as the ground-truth merge reads predictions: CSV by column
(``score_index``; None keeps every column, one output per column), JSON by a path
(``modeltap.core.jsonpath.compile_path``, e.g. ``predictions[*].score``,
``outputs[0].data``); without a path, ``predictions``, ``outputs[0].data`` or the whole
document. A row's value may be a list (one score per output), giving an (n, k) result.
``outputs`` picks some of a row's outputs, in its order (CSV columns, or positions in each
row's list): a multiclass model's probabilities, a multi-target regression's targets.

One ``aiohttp.ClientSession`` per client (aiohttp's advice), opened by ``async with``.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from analyzer.attribution.errors import AttributionError, ModelCallError, ModelResponseError
from analyzer.capture_payload import DEFAULT_JSON_PATHS, rows_at
from modeltap.core.jsonpath import compile_path

Floats = npt.NDArray[np.float64]
ContentType = Literal["text/csv", "application/json"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BODY_IN_ERRORS = 200  # characters of a failed response's body quoted in the error


@dataclass(frozen=True)
class ModelClientConfig:
    """Where and how gently to score rows; see the module docstring for each limit."""

    url: str
    content_type: ContentType = "text/csv"
    accept: str | None = None
    """The Accept header; the content type when not given."""
    score_path: str | None = None
    """JSON responses: the path of the per-row scores."""
    score_index: int | None = 0
    """CSV responses: the column of the score; None for every column."""
    outputs: tuple[int, ...] | None = None
    """The outputs of each row to keep, in this order (CSV columns, or positions in each row's
    list of scores); wins over ``score_index``. None: ``score_index`` (CSV), or all (JSON)."""
    rows_per_request: int = 100
    max_concurrency: int = 2
    requests_per_second: float = 10.0
    burst: int = 1
    timeout_seconds: float = 10.0
    retries: int = 2
    backoff_seconds: float = 0.2
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise AttributionError(f"model url must be http(s)://..., got {self.url!r}")
        if self.content_type not in ("text/csv", "application/json"):
            raise AttributionError(
                f"content_type must be text/csv or application/json, got {self.content_type!r}"
            )
        positive = {
            "rows_per_request": self.rows_per_request,
            "max_concurrency": self.max_concurrency,
            "requests_per_second": self.requests_per_second,
            "burst": self.burst,
            "timeout_seconds": self.timeout_seconds,
        }
        for name, value in positive.items():
            if not value > 0:
                raise AttributionError(f"{name} must be > 0, got {value!r}")
        if self.retries < 0 or self.backoff_seconds < 0:
            raise AttributionError("retries and backoff_seconds must be >= 0")
        if self.score_index is not None and self.score_index < 0:
            raise AttributionError(f"score_index must be >= 0, got {self.score_index}")
        if self.outputs is not None:
            if not self.outputs or any(i < 0 for i in self.outputs):
                raise AttributionError(f"outputs must be indices >= 0, got {list(self.outputs)}")
            if len(set(self.outputs)) != len(self.outputs):
                raise AttributionError(f"outputs lists an index twice: {list(self.outputs)}")
        if self.score_path is not None:
            try:
                compile_path(self.score_path)
            except ValueError as e:
                raise AttributionError(f"score_path: {e}") from e


class TokenBucket:
    """At most ``rate`` acquisitions a second on average, ``burst`` at once.

    ``clock`` and ``sleep`` are injectable, so tests count acquisitions against a fake clock
    instead of measuring wall time.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for a token; waiters are served in turn (the lock is fair).

        The token is taken first (the balance may go negative) and then slept off, so rounding
        can never leave a waiter a hair short of a token forever.
        """
        async with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            if self._tokens < 0:
                await self._sleep(-self._tokens / self.rate)


class ModelClient:
    """Scores rows on the model server: ``async with ModelClient(config) as c: await c.predict(x)``."""

    def __init__(self, config: ModelClientConfig, *, limiter: TokenBucket | None = None) -> None:
        self.config = config
        self.limiter = limiter or TokenBucket(config.requests_per_second, config.burst)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._path = compile_path(config.score_path) if config.score_path else None
        self.requests = 0
        """Attempts sent, retries included."""

    async def __aenter__(self) -> ModelClient:
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def predict(self, rows: Any) -> Floats:
        """Scores of ``rows`` (n, m): shape (n,) for one output per row, else (n, k)."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2:
            raise AttributionError(f"rows must be a 2-d array, got shape {x.shape}")
        if not len(x):
            return np.zeros(0)
        step = self.config.rows_per_request
        tasks = [asyncio.create_task(self._score(x[i : i + step])) for i in range(0, len(x), step)]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        widths = {p.shape[1:] for p in parts}
        if len(widths) > 1:
            raise ModelResponseError(
                f"responses differ in outputs per row: {sorted(widths)}", url=self.config.url
            )
        return np.concatenate(parts)

    def _body(self, x: Floats) -> bytes:
        if self.config.content_type == "application/json":
            return orjson.dumps({"instances": x.tolist()})
        buf = io.StringIO()
        np.savetxt(buf, x, fmt="%.17g", delimiter=",")
        return buf.getvalue().encode()

    async def _score(self, x: Floats) -> Floats:
        cfg = self.config
        if self._session is None:
            raise AttributionError("ModelClient is not open: use `async with ModelClient(...)`")
        headers = {
            "Content-Type": cfg.content_type,
            "Accept": cfg.accept or cfg.content_type,
            **cfg.headers,
        }
        body = self._body(x)
        problem = ""
        status: int | None = None
        attempts = 0
        async with self._semaphore:
            for attempt in range(cfg.retries + 1):
                attempts += 1
                if attempt:
                    await asyncio.sleep(cfg.backoff_seconds * 2 ** (attempt - 1))
                await self.limiter.acquire()
                self.requests += 1
                try:
                    async with self._session.post(cfg.url, data=body, headers=headers) as resp:
                        status = resp.status
                        data = await resp.read()
                except TimeoutError:
                    status, problem = None, f"timed out after {cfg.timeout_seconds:g}s"
                    continue
                except aiohttp.ClientError as e:
                    status, problem = None, f"{type(e).__name__}: {e}"
                    continue
                if 200 <= status < 300:
                    return self._parse(data, len(x))
                problem = f"HTTP {status}: {data[:_BODY_IN_ERRORS].decode(errors='replace')!r}"
                if status not in RETRY_STATUSES:
                    break
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        raise ModelCallError(
            f"scoring {len(x)} rows on {cfg.url} failed ({tries}): {problem}",
            url=cfg.url,
            status=status,
        )

    def _parse(self, data: bytes, n: int) -> Floats:
        try:
            if self.config.content_type == "application/json" or data.lstrip()[:1] in (
                b"{",
                b"[",
            ):
                scores = self._select(self._json_scores(orjson.loads(data)))
            else:
                i = self.config.score_index
                scores = np.loadtxt(
                    io.StringIO(data.decode()),
                    delimiter=",",
                    ndmin=2,
                    usecols=self.config.outputs or (None if i is None else (i,)),
                )
        except (ValueError, IndexError, TypeError, orjson.JSONDecodeError) as e:
            raise ModelResponseError(
                f"cannot read scores from the response of {self.config.url}: {e}; "
                f"body starts {data[:_BODY_IN_ERRORS]!r}",
                url=self.config.url,
            ) from e
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if len(scores) != n or scores.ndim > 2:
            raise ModelResponseError(
                f"{self.config.url} answered {n} rows with scores of shape {scores.shape}",
                url=self.config.url,
            )
        return scores

    def _select(self, scores: Floats) -> Floats:
        """The configured ``outputs`` of each row of JSON scores (n, k)."""
        wanted = self.config.outputs
        if wanted is None:
            return scores
        width = scores.shape[1] if scores.ndim == 2 else 1
        if scores.ndim != 2 or max(wanted) >= width:
            raise ValueError(f"outputs {list(wanted)} asked of rows with {width} score(s) each")
        return scores[:, list(wanted)]

    def _json_scores(self, doc: Any) -> Floats:
        found = None
        if self._path is not None:
            found = rows_at(doc, self._path)
        else:
            for path in DEFAULT_JSON_PATHS:
                found = rows_at(doc, compile_path(path)) if isinstance(doc, dict) else None
                if found is not None:
                    break
            if found is None and isinstance(doc, list):
                found = doc
        if found is None:
            where = self.config.score_path or " or ".join(DEFAULT_JSON_PATHS)
            raise ValueError(f"no scores at {where}")
        return np.asarray(found, dtype=np.float64)
