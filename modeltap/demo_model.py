"""A small real model server for demos and tests: scikit-learn's iris classifier over HTTP.

The model is trained at start-up on the iris data set that scikit-learn ships (no download).
It speaks the SageMaker serving convention:

- ``GET /ping`` answers 200 once the model is loaded.
- ``POST /invocations`` with ``text/csv`` (rows of 4 numbers) or ``application/json``
  (``{"instances": [[...], ...]}``, a list of rows, or objects keyed by feature name) answers with
  one prediction per row, as CSV (``label,probability``) or JSON (``{"predictions": [...]}``)
  according to ``Accept`` (default: the request's own format).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from aiohttp import web

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
log = logging.getLogger("modeltap.demo_model")


class BadInput(ValueError):
    """The request body is not rows of four numbers."""


class IrisModel:
    """Logistic regression on iris; predictions are vectorised over the rows of a request."""

    def __init__(self, seed: int = 0) -> None:
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        data = load_iris()
        self.classes = [str(c) for c in data.target_names]
        self.model = LogisticRegression(max_iter=500, random_state=seed).fit(data.data, data.target)

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (label index, probability of that label) per row."""
        proba = self.model.predict_proba(rows)
        idx = proba.argmax(axis=1)
        return idx, proba[np.arange(len(idx)), idx]


def parse_csv(body: bytes) -> np.ndarray:
    text = body.decode("utf-8")
    if not text.strip():
        raise BadInput("empty CSV body")
    try:
        rows = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise BadInput(f"CSV rows must be {len(FEATURES)} numbers: {exc}") from exc
    return rows


def parse_json(body: bytes) -> np.ndarray:
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"invalid JSON: {exc}") from exc
    if isinstance(doc, dict) and "instances" in doc:
        doc = doc["instances"]
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc:
        raise BadInput('expected {"instances": [...]}, a list of rows, or an object of features')
    if all(isinstance(r, dict) for r in doc):
        try:
            doc = [[r[f] for f in FEATURES] for r in doc]
        except KeyError as exc:
            raise BadInput(f"missing feature {exc.args[0]!r}") from exc
    try:
        rows = np.asarray(doc, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"rows must be lists of {len(FEATURES)} numbers") from exc
    return rows


def create_app(model: IrisModel) -> web.Application:
    async def ping(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def invocations(request: web.Request) -> web.Response:
        ctype = request.content_type
        body = await request.read()
        try:
            if ctype == "text/csv":
                rows = parse_csv(body)
            elif ctype in ("application/json", "application/jsonlines"):
                rows = parse_json(body)
            else:
                return web.Response(status=415, text=f"unsupported content type {ctype!r}\n")
            if rows.ndim != 2 or rows.shape[1] != len(FEATURES):
                raise BadInput(f"each row needs {len(FEATURES)} features, got shape {rows.shape}")
            if not np.isfinite(rows).all():
                raise BadInput("features must be finite numbers")
        except (BadInput, UnicodeDecodeError) as exc:
            return web.Response(status=400, text=f"bad input: {exc}\n")
        idx, prob = model.predict(rows)
        accept = request.headers.get("Accept", "")
        want_json = "application/json" in accept or (
            ctype != "text/csv" and "text/csv" not in accept
        )
        if want_json:
            labels = [model.classes[i] for i in idx.tolist()]
            preds = [
                {"label": lab, "probability": p}
                for lab, p in zip(labels, prob.tolist(), strict=True)
            ]
            return web.Response(
                body=orjson.dumps({"predictions": preds}), content_type="application/json"
            )
        names = np.asarray(model.classes)[idx]
        out = io.StringIO()
        np.savetxt(
            out, np.column_stack([names, np.char.mod("%.6f", prob)]), fmt="%s", delimiter=","
        )
        return web.Response(text=out.getvalue(), content_type="text/csv")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modeltap demo-model", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    model = IrisModel()
    print(
        f"demo model (iris, {len(model.classes)} classes) on http://{args.host}:{args.port}",
        flush=True,
    )
    web.run_app(create_app(model), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
