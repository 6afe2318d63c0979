"""Where training and evaluation run: `device="auto"` is CUDA when present, else the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from prunequant.errors import ConfigError

Device = str | torch.device
_DEFAULT: list[Device] = ["auto"]  # what a Trainer given no device uses; set by `default_device`


@contextlib.contextmanager
def default_device(device: Device) -> Iterator[None]:
    """Within the block, Trainers given no `device` train on `device` (the lab's `[run] device`)."""
    check_device_name(device)
    _DEFAULT.append(device)
    try:
        yield
    finally:
        _DEFAULT.pop()


def check_device_name(device: Device) -> Device:
    """`device` if it names a device ("auto", "cpu", "cuda", "cuda:N", "mps"), else ConfigError."""
    if isinstance(device, str) and device == "auto":
        return device
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def resolve_device(device: Device | None = "auto") -> torch.device:
    """The torch.device for `device`: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N", ...

    Parameters
    ----------
    device:
        A name or a torch.device; None: the default ("auto", or the one `default_device` set).

    Returns
    -------
    The device; ConfigError (one line) for an unknown name or an accelerator that is not available.
    """
    device = check_device_name(_DEFAULT[-1] if device is None else device)
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {str(device)!r} was asked for but CUDA is not available here "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(
                f"device {str(device)!r} does not exist: this machine has {count} CUDA device(s)"
            )
    elif resolved.type not in ("cpu", "mps"):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return resolved


def model_device(model: object) -> torch.device:
    """The device of `model`'s first parameter or buffer (the CPU for callables and empty models)."""
    if isinstance(model, nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def placed_on(model: object, device: torch.device) -> Iterator[None]:
    """Run a block with `model` (an nn.Module; other callables are left alone) on `device`, then move it
    back to where it was, as Lightning's teardown does. In place."""
    home = model_device(model)
    moves = isinstance(model, nn.Module) and home != device
    if moves:
        model.to(device)  # type: ignore[union-attr]
    try:
        yield
    finally:
        if moves:
            model.to(home)  # type: ignore[union-attr]
