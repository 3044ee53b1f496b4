"""Which analyzer a bench/monitor child runs: this checkout's, build/compiled's or another's.

``--compiled`` runs the compiled copy of the tree (``make compiled``: ``build/compiled``, with the
C passes of analyzer/_numparse.c and analyzer/_jsonrows.c built), as the analyzer image ships it;
``--tree DIR`` another checkout (a "before" beside an "after"). The parent passes the choice to its
children through the environment; each child puts the tree first on ``sys.path`` when this module
is imported (before anything imports ``analyzer``) and, once it has imported the analyzer, calls
``check()``, which stops the bench if the analyzer came from elsewhere or, with ``--compiled``,
if the C passes did not load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPILED_TREE = REPO / "build" / "compiled"
TREE_ENV = "MODELTAP_BENCH_TREE"
COMPILED_ENV = "MODELTAP_BENCH_COMPILED"

if os.environ.get(TREE_ENV) and os.environ[TREE_ENV] not in sys.path:
    sys.path.insert(0, os.environ[TREE_ENV])


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compiled",
        action="store_true",
        help="run the analyzer of build/compiled (make compiled), C passes included",
    )
    p.add_argument("--tree", type=Path, help="run the analyzer of this checkout")


def choose(args: argparse.Namespace) -> None:
    """In the parent: hand ``--compiled`` / ``--tree`` to the children (read at their import)."""
    if args.compiled:
        os.environ[COMPILED_ENV] = "1"
        args.tree = args.tree or COMPILED_TREE
    if args.tree:
        os.environ[TREE_ENV] = str(Path(args.tree).resolve())


def check() -> bool:
    """In a child: stop unless the analyzer is the chosen one; return whether its C passes load."""
    import analyzer

    try:
        from analyzer.numparse import compiled as numparse
    except ImportError:  # a tree from before analyzer/numparse.py
        numparse = False
    try:
        from analyzer.jsonrows import compiled as jsonrows
    except ImportError:  # a tree from before analyzer/jsonrows.py: its CSV pass is the C pass
        jsonrows = None
    compiled = numparse and jsonrows is not False
    tree = os.environ.get(TREE_ENV)
    if tree and not analyzer.__file__.startswith(tree):
        raise SystemExit(f"--tree {tree}: analyzer was imported from {analyzer.__file__}")
    if os.environ.get(COMPILED_ENV) == "1" and not (numparse and jsonrows):
        raise SystemExit(
            f"--compiled: the analyzer's C passes are not built in {COMPILED_TREE} (make compiled)"
        )
    return compiled
