"""Checkpoints shipped inside the package, addressed as `builtin:NAME` wherever a checkpoint path is taken."""

from __future__ import annotations

from pathlib import Path

from prunequant.errors import CheckpointError

ASSETS = Path(__file__).resolve().parent / "assets"
BUILTIN_CHECKPOINTS = {"fashion-mnist": "fashion_mnist_small_cnn.pt"}
PREFIX = "builtin:"


def resolve_checkpoint(spec: str | Path) -> Path:
    """Map `builtin:NAME` to the shipped file; any other value is returned as a Path unchanged."""
    text = str(spec)
    if not text.startswith(PREFIX):
        return Path(spec)
    name = text[len(PREFIX) :]
    if name not in BUILTIN_CHECKPOINTS:
        raise CheckpointError(
            f"unknown builtin checkpoint {name!r}; available: {', '.join(BUILTIN_CHECKPOINTS)}"
        )
    path = ASSETS / BUILTIN_CHECKPOINTS[name]
    if not path.exists():
        raise CheckpointError(f"builtin checkpoint {name!r} is missing from the installation ({path})")
    return path
