"""Parsing source files with tree-sitter: one module per language grammar family,
plain records out (`model`), and the fan-out over processes (`pool`)."""
