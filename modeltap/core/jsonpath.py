"""The one JSON path grammar of the project: capture redaction (sidecar) and prediction paths
(analyzer) compile their paths here and walk documents their own way.

Grammar: ``name``, ``.name``, ``[i]`` (negative counts from the end), ``[a:b:c]``, ``[*]``,
``['name']`` and ``[?key=='value']`` (the first list element whose ``key`` equals the string
``value``, e.g. an Open Inference Protocol output tensor by name). A leading ``$`` is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\.?(?P<name>[^.\[\]]+)                            # key
      | \[(?P<index>-?\d+)\]                              # [0], [-1]
      | \[(?P<slice>-?\d*:-?\d*(?::-?\d*)?)\]             # [1:], [1::2]
      | \[(?P<star>\*)\]                                  # [*]
      | \[(?P<quote>['"])(?P<qname>.*?)(?P=quote)\]       # ['key.with.dots']
      | \[\?(?P<fkey>[^=\]]+)==(?P<fq>['"])(?P<fval>.*?)(?P=fq)\]  # [?name=='probabilities']
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Step:
    """One path step: ``kind`` is key, index, slice, star or filter."""

    kind: str
    key: str = ""
    index: int = 0
    slice: slice | None = None
    value: str = ""


def compile_path(path: str) -> tuple[Step, ...]:
    """Compile a path (grammar above); ValueError names the position it cannot read."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos or (m["name"] is not None and pos and text[pos] != "."):
            raise ValueError(f"cannot read path {path!r} at character {pos}: {text[pos:]!r}")
        if m["name"] is not None:
            steps.append(Step("key", key=m["name"]))
        elif m["index"] is not None:
            steps.append(Step("index", index=int(m["index"])))
        elif m["slice"] is not None:
            parts = [int(p) if p else None for p in m["slice"].split(":")]
            if len(parts) == 3 and parts[2] == 0:
                raise ValueError(f"path {path!r}: slice step cannot be zero")
            steps.append(Step("slice", slice=slice(*parts)))
        elif m["star"] is not None:
            steps.append(Step("star"))
        elif m["quote"] is not None:
            steps.append(Step("key", key=m["qname"]))
        else:
            steps.append(Step("filter", key=m["fkey"].strip(), value=m["fval"]))
        pos = m.end()
    return tuple(steps)
