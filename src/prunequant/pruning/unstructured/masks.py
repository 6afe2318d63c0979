"""Pruning masks: a bool buffer `<param>_pq_mask` beside each pruned parameter, held by hooks.

Representation (chosen so plain checkpoints keep working and no training loop can lose the sparsity):
  * The parameter stays a normal `nn.Parameter` named as before (no `weight_orig` reparametrisation, no
    class swap), and its pruned entries are set to exactly 0.0 as soon as a mask is set; state_dict keys
    never change.
  * Hooks attached with the mask (see mask_guard) zero the pruned entries again before every forward,
    before every state_dict and after every torch optimizer step, in any loop, with nothing to call.
    `apply_masks` does it on demand (and masks an optimizer's state); `MaskCallback` also masks the
    gradients, for clean optimizer state in the Trainer.
  * The mask is a *non-persistent* bool buffer, so `save_checkpoint`/`load_checkpoint` and the compressed
    container see an ordinary model whose pruned weights are zero. After loading, `restore_masks` derives
    the mask again as `weight != 0` (a weight that training drove to exactly 0.0 is then treated as pruned).
  * `make_permanent` (or `remove_masks`) bakes the zeros in and drops masks and hooks: a plain model again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.mask_guard import MASK_SUFFIX, guard, unguard, untrack, zero_pruned
from prunequant.pruning.unstructured.targets import candidate_tensors


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
    zero_pruned(weight, getattr(module, param + MASK_SUFFIX))
    guard(module)


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
    """Zero every masked entry of the weights now, and of `optimizer`'s per-parameter state. In place.

    Not needed for correctness: the mask hooks do it before every forward, every state_dict and after
    every optimizer step. Call it after changing weights by hand when you read the stored tensors before
    the next forward, or to mask an optimizer's state (momentum, Adam moments) built before pruning.

    Parameters
    ----------
    model:
        A model with prunequant masks (others are returned unchanged).
    optimizer:
        Optional; its state tensors shaped like a masked parameter are masked too.

    Returns
    -------
    `model`.
    """
    for item in masked_params(model):
        state = optimizer.state.get(item.tensor) if optimizer is not None else None
        zero_pruned(item.tensor, item.mask, state)
    return model


def mask_gradients(model: nn.Module) -> None:
    """Zero the gradient of every masked entry. In place."""
    for item in masked_params(model):
        grad = item.tensor.grad
        if grad is not None:
            grad.masked_fill_(~item.mask, 0.0)


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake the masks in and drop them: pruned entries stay exactly zero, masks and hooks go. In place.

    The model is then a plain model (fine-tuning it may revive the zeros; `restore_masks` re-attaches
    masks derived from them). `make_permanent` does this and also converts torch.nn.utils.prune's masks.
    """
    for item in list(masked_params(model)):
        zero_pruned(item.tensor, item.mask)
        untrack(item.tensor)
        delattr(item.module, item.param + MASK_SUFFIX)
        unguard(item.module)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake the masks into the weights and drop them (ours and torch.nn.utils.prune's). In place.

    The zeros stay in the weights; the model is a plain model again (fine-tuning it now may revive them).
    """
    from prunequant.pruning.unstructured.torch_prune_interop import from_torch_prune  # imports this module

    return remove_masks(from_torch_prune(model))


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


@contextmanager
def masks_follow_reshape(model: nn.Module) -> Iterator[None]:
    """Carry the masks through a change of layer shapes (channel removal). In place.

    On entry the masks are baked into the weights and dropped; on exit they are derived again from the
    zeros (`weight != 0`) of the masked tensors that still exist, so they are sliced with the weights.
    """
    names = list(get_masks(model))
    remove_masks(model)
    try:
        yield
    finally:
        if names:
            existing = {target.name for target in candidate_tensors(model, include_bias=True)}
            restore_masks(model, [name for name in names if name in existing])
