"""Small real model servers for demos and tests: scikit-learn classifiers over HTTP.

Two models, trained at start-up without any download:

- ``iris`` (default): logistic regression on the iris data set scikit-learn ships; the
  prediction is the class name and ``probability`` that of the predicted class.
- ``credit``: a binary approve(1)/deny(0) logistic regression on a seeded synthetic credit
  data set (:func:`credit_data`) whose features include ``age``, the sensitive attribute the bias
  monitoring examples use; ``probability`` is that of approval (class 1), as binary classifiers
  usually answer.

``--permute-feature NAME`` trains on data whose NAME column is shuffled, so the served model no
longer relies on it (how the attribution-drift test swaps in a changed model).
``--probabilities`` adds every class's probability to each answer (a model with several
outputs, as multi-output attribution explains): JSON ``"probabilities": [...]`` per prediction,
CSV columns after ``label,probability``, in class order.

Both speak the SageMaker serving convention:

- ``GET /ping`` answers 200 once the model is loaded.
- ``POST /invocations`` with ``text/csv`` (rows of numbers) or ``application/json``
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
CREDIT_FEATURES = ("age", "income", "debt_ratio", "years_employed", "accounts")
log = logging.getLogger("modeltap.demo_model")


class BadInput(ValueError):
    """The request body is not rows of the model's numbers."""


def credit_data(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic credit data set: features (CREDIT_FEATURES order) and approve(1)/deny(0).

    Approval depends on income, debt and employment, not on age; so a model trained on it treats
    age groups alike unless the traffic of one group differs (which bias monitoring must see).
    """
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 70, n).round()
    income = rng.lognormal(10.8, 0.45, n).round(-2)
    debt = rng.beta(2, 5, n).round(3)
    years = np.minimum(age - 18, rng.exponential(8, n)).round(1)
    accounts = rng.poisson(3, n).astype(np.float64)
    z = (
        1.6 * (np.log(income) - 10.8) / 0.45
        - 2.2 * (debt - 0.286) / 0.16
        + 0.7 * (years - 6.5) / 6.5
        + 0.2 * (accounts - 3)
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return np.column_stack([age, income, debt, years, accounts]), y


class DemoModel:
    """A fitted classifier; predictions are vectorised over the rows of a request."""

    def __init__(self, name: str = "iris", permute: str | None = None, seed: int = 0) -> None:
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if name == "iris":
            data = load_iris()
            x, y = data.data, data.target
            self.features: tuple[str, ...] = FEATURES
            self.classes = [str(c) for c in data.target_names]
            self.binary = False
        elif name == "credit":
            x, y = credit_data(seed=seed)
            self.features = CREDIT_FEATURES
            self.classes = ["0", "1"]
            self.binary = True
        else:
            raise ValueError(f"unknown demo model {name!r}: iris or credit")
        if permute is not None:
            if permute not in self.features:
                raise ValueError(f"--permute-feature {permute!r} is not one of {self.features}")
            x = x.copy()
            col = self.features.index(permute)
            x[:, col] = np.random.default_rng(seed + 1).permutation(x[:, col])
        self.name = name
        if self.binary:  # features on very different scales
            self.model = make_pipeline(
                StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)
            ).fit(x, y)
        else:
            self.model = LogisticRegression(max_iter=500, random_state=seed).fit(x, y)

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(label index, probability) per row: of the predicted label, or of class 1 (binary)."""
        proba = self.model.predict_proba(rows)
        idx = proba.argmax(axis=1)
        if self.binary:
            return idx, proba[:, 1]
        return idx, proba[np.arange(len(idx)), idx]


IrisModel = DemoModel  # the default model, under its old name


def parse_csv(body: bytes, features: Sequence[str] = FEATURES) -> np.ndarray:
    text = body.decode("utf-8")
    if not text.strip():
        raise BadInput("empty CSV body")
    try:
        rows = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise BadInput(f"CSV rows must be {len(features)} numbers: {exc}") from exc
    return rows


def parse_json(body: bytes, features: Sequence[str] = FEATURES) -> np.ndarray:
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
            doc = [[r[f] for f in features] for r in doc]
        except KeyError as exc:
            raise BadInput(f"missing feature {exc.args[0]!r}") from exc
    try:
        rows = np.asarray(doc, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"rows must be lists of {len(features)} numbers") from exc
    return rows


def create_app(model: DemoModel, probabilities: bool = False) -> web.Application:
    async def ping(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def invocations(request: web.Request) -> web.Response:
        ctype = request.content_type
        body = await request.read()
        try:
            if ctype == "text/csv":
                rows = parse_csv(body, model.features)
            elif ctype in ("application/json", "application/jsonlines"):
                rows = parse_json(body, model.features)
            else:
                return web.Response(status=415, text=f"unsupported content type {ctype!r}\n")
            if rows.ndim != 2 or rows.shape[1] != len(model.features):
                raise BadInput(
                    f"each row needs {len(model.features)} features, got shape {rows.shape}"
                )
            if not np.isfinite(rows).all():
                raise BadInput("features must be finite numbers")
        except (BadInput, UnicodeDecodeError) as exc:
            return web.Response(status=400, text=f"bad input: {exc}\n")
        idx, prob = model.predict(rows)
        every = model.model.predict_proba(rows) if probabilities else None
        accept = request.headers.get("Accept", "")
        want_json = "application/json" in accept or (
            ctype != "text/csv" and "text/csv" not in accept
        )
        if want_json:
            labels = [model.classes[i] for i in idx.tolist()]
            preds: list[dict[str, Any]] = [
                {"label": lab, "probability": p}
                for lab, p in zip(labels, prob.tolist(), strict=True)
            ]
            if every is not None:
                for pred, row in zip(preds, every.tolist(), strict=True):
                    pred["probabilities"] = row
            return web.Response(
                body=orjson.dumps({"predictions": preds}), content_type="application/json"
            )
        names = np.asarray(model.classes)[idx]
        out = io.StringIO()
        np.savetxt(
            out,
            np.column_stack(
                [names, np.char.mod("%.6f", prob)]
                + ([np.char.mod("%.6f", every)] if every is not None else [])
            ),
            fmt="%s",
            delimiter=",",
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
    parser.add_argument("--model", choices=["iris", "credit"], default="iris")
    parser.add_argument(
        "--permute-feature", metavar="NAME", help="train with this feature's column shuffled"
    )
    parser.add_argument(
        "--probabilities", action="store_true", help="answer every class's probability too"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        model = DemoModel(args.model, permute=args.permute_feature)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"demo model ({model.name}, {len(model.classes)} classes"
        f"{f', {args.permute_feature} permuted' if args.permute_feature else ''}) "
        f"on http://{args.host}:{args.port}",
        flush=True,
    )
    web.run_app(
        create_app(model, args.probabilities),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
