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
        problem, fix = missing_gpu(torch)
        raise SettingsError(f"{problem}: {fix}")
    return "cpu"


def missing_gpu(torch) -> tuple[str, str]:
    """Why DEVICE=cuda cannot be had here, and what to do about it."""
    if torch.version.cuda is None:
        return (f"DEVICE=CUDA, but torch {torch.__version__} is a CPU-only build",
                "run setup_edge.sh on this machine to install the CUDA build of torch, "
                "or set DEVICE=AUTO")
    return (f"DEVICE=CUDA, but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU",
            "check the NVIDIA driver with nvidia-smi (and CUDA_VISIBLE_DEVICES), "
            "or set DEVICE=AUTO to fall back to the CPU")
