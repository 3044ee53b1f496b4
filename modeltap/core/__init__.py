"""The shared core: what the sidecar and the analyzer both stand on, and nothing else.

- :mod:`.record` — the capture record format (SageMaker's data-capture JSON Lines): the sidecar
  encodes it, the analyzer decodes it; one definition of the format.
- :mod:`.store` — the object stores (local directory, S3) the sidecar uploads to and the analyzer
  reads from and writes reports to.
- :mod:`.errors` — the error roots both raise (configuration, store, record errors).
- :mod:`.jsonpath` — the one JSON path grammar (redaction paths, prediction paths).
- :mod:`.settings` — the one configuration machinery (typed fields, env overrides, nearest-name
  suggestions, generated flags and docs) of every command; :mod:`.store_config` — the store
  connection keys every store user shares.

It sits in the ``modeltap`` package, which every image ships, so each process depends on the core
and never on the other process: the core imports neither ``sidecar`` nor ``analyzer`` (and no
numpy/pyarrow, which the sidecar image lacks), checked by tests/test_import_graph.py and
tests/sidecar/test_imports.py. What needs configuration from a process (S3 settings, redaction)
is stated here as a protocol and passed in.
"""
