"""Embeddings: Node2Vec on the file graph, text chunks through MiniLM (or an API)."""
