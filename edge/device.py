"""Which device the worker computes on: a CUDA GPU when torch sees one, else the CPU."""
from __future__ import annotations


def describe_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    return "cpu"
