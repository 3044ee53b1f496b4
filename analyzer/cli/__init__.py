"""The analyzer's commands: each parses its options and calls the library."""
