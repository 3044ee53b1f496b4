"""atheris harness: captured payloads (PayloadParser) and the prediction reader (merge).

The input is split into a few payload documents; each becomes a record whose endpointInput and
endpointOutput carry it as CSV, JSON or base64. Contract: PayloadParser.parse, merge and
read_predictions never raise; what they cannot read is counted.
"""

from __future__ import annotations

import base64
import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports():
    from analyzer.capture_payload import INPUT, OUTPUT
    from analyzer.groundtruth.merge import merge
    from analyzer.groundtruth.predictions import PredictionSpec, read_predictions
    from analyzer.groundtruth.records import Labels
    from analyzer.payloads import PayloadParser

SPECS = [
    PredictionSpec(),
    PredictionSpec(inference_index=1, probability_index=0),
    PredictionSpec(inference_attribute="predictions[*].label"),
    PredictionSpec(probability_attribute="outputs[?name=='p'].data[*][1]"),
]
ENCODINGS = ["CSV", "JSON", "BASE64"]
TYPES = ["text/csv", "application/json", "application/octet-stream"]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    records = []
    for i in range(fdp.ConsumeIntInRange(1, 4)):
        enc = ENCODINGS[fdp.ConsumeIntInRange(0, 2)]
        ctype = TYPES[fdp.ConsumeIntInRange(0, 2)]
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 400))
        text = (
            base64.b64encode(body).decode()
            if enc == "BASE64" and fdp.ConsumeBool()
            else body.decode("utf-8", "replace")
        )
        payload = {"observedContentType": ctype, "data": text, "encoding": enc}
        records.append(
            {
                "captureData": {INPUT: payload, OUTPUT: payload},
                "eventMetadata": {"inferenceId": f"r{i % 2}"},
            }
        )
    for side in (INPUT, OUTPUT):
        PayloadParser(["a", "b", "c"], side=side).parse(records)
    labels = Labels.from_lists(["r0", "r1:0", "r1"], ["1", "0", "1,0"])
    spec = SPECS[fdp.ConsumeIntInRange(0, len(SPECS) - 1)]
    merge(records, labels, spec)
    read_predictions(records, spec)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
