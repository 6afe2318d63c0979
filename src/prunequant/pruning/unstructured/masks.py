"""Pruning masks: a bool buffer `<param>_pq_mask` beside each pruned parameter; zeros live in the weights.

Representation (chosen so plain checkpoints keep working):
  * The parameter stays a normal `nn.Parameter` named as before (no `weight_orig` reparametrisation), and
    its pruned entries are set to exactly 0.0 as soon as a mask is set; state_dict keys never change.
  * The mask is a *non-persistent* bool buffer, so `save_checkpoint`/`load_checkpoint` and the compressed
    container see an ordinary model whose pruned weights are zero. After loading, `restore_masks` derives
    the mask again as `weight != 0` (a weight that training drove to exactly 0.0 is then treated as pruned).
  * Nothing runs in `forward`: masks are enforced where weights change, by `MaskCallback` during training
    (gradients, weights and optimizer state) or by calling `apply_masks` in a custom loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.targets import candidate_tensors

MASK_SUFFIX = "_pq_mask"


@dataclass(frozen=True)
class MaskedParam:
    """A masked parameter: `module.<param>` keeps its entries where `mask` is True."""

    name: str
    module: nn.Module
    param: str
    mask: torch.Tensor

    @property
    def tensor(self) -> torch.Tensor:
        return getattr(self.module, self.param)


def set_mask(module: nn.Module, param: str, mask: torch.Tensor) -> None:
    """Attach `mask` (True = keep) to `module.<param>` and zero the pruned entries now. In place."""
    weight = getattr(module, param)
    if mask.shape != weight.shape:
        raise ConfigError(f"mask shape {list(mask.shape)} does not match {param} {list(weight.shape)}")
    module.register_buffer(
        param + MASK_SUFFIX, mask.to(device=weight.device, dtype=torch.bool), persistent=False
    )
    with torch.no_grad():
        weight.masked_fill_(~getattr(module, param + MASK_SUFFIX), 0.0)


def masked_params(model: nn.Module) -> Iterator[MaskedParam]:
    """Every masked parameter of `model`, in registration order."""
    for module_name, module in model.named_modules():
        for buffer_name, mask in module.named_buffers(recurse=False):
            if buffer_name.endswith(MASK_SUFFIX):
                param = buffer_name[: -len(MASK_SUFFIX)]
                name = f"{module_name}.{param}" if module_name else param
                yield MaskedParam(name, module, param, mask)


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask} of every masked parameter (the tensors themselves, not copies)."""
    return {item.name: item.mask for item in masked_params(model)}


def has_masks(model: nn.Module) -> bool:
    """True when any parameter of `model` carries a prunequant mask."""
    return next(masked_params(model), None) is not None


def apply_masks(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> nn.Module:
    """Zero every masked entry of the weights, and of `optimizer`'s per-parameter state. In place.

    Optimizer state tensors shaped like the parameter (SGD momentum, Adam moments) are masked too, so a
    pruned weight cannot be revived by momentum on the next step.
    """
    with torch.no_grad():
        for item in masked_params(model):
            tensor = item.tensor
            tensor.masked_fill_(~item.mask, 0.0)
            state = optimizer.state.get(tensor, {}) if optimizer is not None else {}
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
                    value.masked_fill_(~item.mask, 0.0)
    return model


def mask_gradients(model: nn.Module) -> None:
    """Zero the gradient of every masked entry. In place."""
    for item in masked_params(model):
        grad = item.tensor.grad
        if grad is not None:
            grad.masked_fill_(~item.mask, 0.0)


def remove_masks(model: nn.Module) -> nn.Module:
    """Drop the mask buffers, leaving the weights as they are. In place."""
    for item in list(masked_params(model)):
        delattr(item.module, item.param + MASK_SUFFIX)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake the masks into the weights and drop them (ours and torch.nn.utils.prune's). In place.

    The zeros stay in the weights; the model is a plain model again (fine-tuning it now may revive them).
    """
    from prunequant.pruning.unstructured.torch_prune_interop import from_torch_prune  # imports this module

    return remove_masks(apply_masks(from_torch_prune(model)))


def restore_masks(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Re-attach masks derived from the zeros (`weight != 0`), e.g. after loading a pruned model. In place.

    `names` are parameter names (as in the pruning result's `layers`); by default every conv/linear
    weight that has at least one zero. Returns the masks attached.
    """
    wanted = set(names) if names is not None else None
    candidates = candidate_tensors(model, include_bias=True)
    unknown = sorted(wanted - {target.name for target in candidates}) if wanted is not None else []
    if unknown:
        raise ConfigError(f"cannot restore masks of {', '.join(unknown[:3])}: no such conv/linear parameter")
    restored = {}
    for target in candidates:
        tensor = getattr(target.module, target.param)
        if wanted is None and (target.param != "weight" or bool(tensor.ne(0).all())):
            continue
        if wanted is not None and target.name not in wanted:
            continue
        set_mask(target.module, target.param, tensor.detach().ne(0))
        restored[target.name] = getattr(target.module, target.param + MASK_SUFFIX)
    return restored
