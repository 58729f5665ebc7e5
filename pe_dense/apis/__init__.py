"""High-level entry points used by the command-line tools."""
