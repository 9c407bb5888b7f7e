"""Which device the worker computes on: a CUDA GPU when torch sees one, else the CPU."""
from __future__ import annotations

from shared.settings import Device, SettingsError


def describe_device(preference: Device = Device.AUTO) -> str:
    """The device as the logs and the status page show it.

    DEVICE=cuda on a machine where torch sees no GPU (no driver, or torch's CPU
    build) is a configuration error at start, not a failure in the first job.
    """
    import torch

    if preference is Device.CPU:
        return "cpu"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return (f"cuda:0 ({props.name}, {props.total_memory / 2**30:.1f} GiB, "
                f"CUDA {torch.version.cuda})")
    if preference is Device.CUDA:
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        raise SettingsError(
            f"DEVICE=cuda but torch {torch.__version__} ({build}) sees no GPU: check the "
            "driver with nvidia-smi and run ./setup_edge.sh to install the matching torch, "
            "or set DEVICE=auto")
    return "cpu"
