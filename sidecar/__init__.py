"""The capturing sidecar: a reverse proxy that samples request/response pairs into object storage."""
