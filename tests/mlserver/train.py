"""Train the iris model MLServer serves in the tests (run with the MLServer venv's Python)."""

import json
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out = Path(sys.argv[1])
model_dir = out / "iris"
model_dir.mkdir(parents=True, exist_ok=True)
data = load_iris()
joblib.dump(
    LogisticRegression(max_iter=500, random_state=0).fit(data.data, data.target),
    model_dir / "model.joblib",
)
(model_dir / "model-settings.json").write_text(
    json.dumps(
        {
            "name": "iris",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }
    )
)
