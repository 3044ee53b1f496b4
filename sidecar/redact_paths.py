"""The paths of the redaction rules: which JSON values a rule replaces.

Their own module so the configuration can check them without importing the redactor (which
imports the configuration).
"""

from __future__ import annotations

from modeltap.core import jsonpath

Step = str | int | None  # a key, an index, or None for [*]


def compile_path(path: str) -> tuple[Step, ...]:
    """Compile a redaction path (:mod:`modeltap.core.jsonpath`'s grammar: keys, indices and ``[*]``);
    ValueError names what it cannot read."""
    steps = jsonpath.compile_path(path)
    if not steps:
        raise ValueError(f"path {path!r} selects the whole document; name a field")
    out: list[Step] = []
    for step in steps:
        if step.kind == "key":
            out.append(step.key)
        elif step.kind == "index":
            out.append(step.index)
        elif step.kind == "star":
            out.append(None)
        else:
            raise ValueError(
                f"path {path!r}: redaction paths take keys, [i] and [*], not {step.kind}s"
            )
    return tuple(out)
