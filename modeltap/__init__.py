"""modeltap: model monitoring for models served on Kubernetes."""

__version__ = "0.1.0"
