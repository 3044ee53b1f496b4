"""What the sidecar and the analyzer both stand on: the configuration machinery and the store's
connection settings."""
