"""The query layer as MCP tools for coding agents: search, context, impact, graph
neighbours, symbol lookup, repositories, ingest and sync (tools.py), over this
process's stores or a remote control plane (backends.py), served at /mcp on the
control plane (http.py) or over stdio by `python -m cloud mcp` (stdio.py)."""
