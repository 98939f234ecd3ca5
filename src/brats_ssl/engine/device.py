"""Device, mixed precision and memory format choices, in one place for training and inference."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch
from torch import nn

from brats_ssl.errors import BadInputError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"--device {name}: CUDA is not available on this machine")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise BadInputError(f"--device {name}: expected auto, cpu or cuda[:N]")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels here (AVX512-BF16 / AMX). Without them bf16 convs fall
    back to a reference path ~75x slower than fp32 (measured on an AVX2-only EPYC)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """``auto``: bf16 on GPUs with native bf16 (compute capability 8.0+, ROCm), fp16 with a
    gradient scaler on older ones (T4, V100); on CPUs bf16 with native bf16 kernels, else fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        # Not the emulated bf16 that torch's default check also accepts on a T4 or V100: it runs slowly.
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def ran_on(device: torch.device, precision: str, processes: int) -> dict:
    """What a training process ran on: a result is bitwise reproducible only with the same torch
    build, device, precision and CPU thread count (sums run in another order), so runs record them."""
    dtype = autocast_dtype(device, precision)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu: {cpu_model()}",
        "precision": {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[dtype],
        "threads": torch.get_num_threads(),
        "processes": processes,
        "torch": str(torch.__version__),
    }


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler when training runs in fp16, whose narrow range flushes small gradients
    to zero without one; None for bf16 and fp32, which keep fp32's range."""
    if autocast_dtype(device, precision) is not torch.float16:
        return None
    return torch.amp.GradScaler(device.type)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_memory_format(module_or_tensor, channels_last: bool):
    """channels_last(_3d) for 4-D / 5-D data when enabled; a no-op otherwise."""
    if not channels_last:
        return module_or_tensor
    if isinstance(module_or_tensor, nn.Module):
        dims = _module_dims(module_or_tensor)
        fmt = torch.channels_last_3d if dims == 3 else torch.channels_last
        return module_or_tensor.to(memory_format=fmt)  # type: ignore[call-overload]  # torch's stub omits it
    tensor = module_or_tensor
    if tensor.dim() == 5:
        return tensor.contiguous(memory_format=torch.channels_last_3d)
    if tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _module_dims(module: nn.Module) -> int:
    for sub in module.modules():
        if isinstance(sub, nn.Conv3d):
            return 3
        if isinstance(sub, nn.Conv2d):
            return 2
    return 3
