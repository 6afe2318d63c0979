"""What keeps masked weights masked in any training loop: hooks attached with the mask, nothing to call.

* A forward pre-hook on the layer zeroes its masked entries before every forward (eager mode), so the
  layer never computes with a revived weight, whatever changed it: an optimizer step, `load_state_dict`,
  a hand-written update. The write bypasses autograd (`.data`) and leaves already-zero entries unchanged,
  so a layer called twice in one forward, or two forwards before one backward, keep a valid graph.
* A state_dict pre-hook does the same before every `state_dict()`: checkpoints and copies of the state
  always hold the masked weights, under the usual keys.
* One process-wide optimizer step post-hook (registered once, with the first mask) zeroes the masked
  entries, and the optimizer's per-parameter state shaped like them (momentum, Adam moments), right after
  every step of any torch optimizer, so the stored weights are masked as soon as a step ends.

Under torch.compile / torch.export tracing the forward hook does nothing (a traced graph may not mutate
parameters); the weights are then as the last step, forward or `apply_masks` left them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.weak import WeakIdKeyDictionary

from prunequant.errors import ModelError

MASK_SUFFIX = "_pq_mask"

_KEEP_BY_PARAM: WeakIdKeyDictionary = WeakIdKeyDictionary()  # parameter -> its keep-mask (weakly keyed)
_STEP_HOOK: list[Any] = []  # the handle of the optimizer post-step hook, once registered


def module_masks(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(parameter name, keep-mask) of every masked parameter of `module` itself (not its children)."""
    for buffer_name, mask in module._buffers.items():
        if buffer_name.endswith(MASK_SUFFIX) and mask is not None:
            yield buffer_name[: -len(MASK_SUFFIX)], mask


def zero_pruned(tensor: torch.Tensor, keep: torch.Tensor, state: Mapping[str, Any] | None = None) -> None:
    """Set the entries of `tensor` where `keep` is False to 0.0, and those of `state`'s tensors shaped
    like it (optimizer state). In place, outside autograd."""
    pruned = keep.logical_not()
    tensor.data.masked_fill_(pruned, 0.0)
    for value in (state or {}).values():
        if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
            value.data.masked_fill_(pruned, 0.0)


def guard(module: nn.Module) -> None:
    """Attach the hooks that hold `module`'s masks (once per module) and track its masked parameters."""
    if _hold_masks not in module._forward_pre_hooks.values():
        module.register_forward_pre_hook(_hold_masks)
        module.register_state_dict_pre_hook(_mask_before_state_dict)
    _track(module)
    if not _STEP_HOOK:
        _STEP_HOOK.append(register_optimizer_step_post_hook(_mask_after_step))


def unguard(module: nn.Module) -> None:
    """Detach the hooks from `module` when it has no mask left."""
    if next(module_masks(module), None) is not None:
        return
    for hooks in (module._forward_pre_hooks, module._state_dict_pre_hooks):
        for key in [key for key, hook in hooks.items() if hook in (_hold_masks, _mask_before_state_dict)]:
            del hooks[key]


def untrack(tensor: torch.Tensor) -> None:
    """Forget the mask of a parameter whose mask was removed."""
    _KEEP_BY_PARAM.pop(tensor, None)


def is_guarded(module: nn.Module) -> bool:
    """True when `module`'s masks are held by the forward hook."""
    return _hold_masks in module._forward_pre_hooks.values()


def _track(module: nn.Module) -> None:
    for param, keep in module_masks(module):
        _KEEP_BY_PARAM[getattr(module, param)] = keep


def _apply(module: nn.Module) -> None:
    for param, keep in module_masks(module):
        tensor = getattr(module, param)
        if tensor.shape != keep.shape:
            raise ModelError(
                f"{type(module).__name__}.{param} is {list(tensor.shape)} but its pruning mask is "
                f"{list(keep.shape)}: the layer was reshaped after pruning; call make_permanent before "
                "reshaping it (restore_masks afterwards re-derives masks from the zeros)"
            )
        zero_pruned(tensor, keep)


def _hold_masks(module: nn.Module, args: Any) -> None:
    if torch.compiler.is_compiling():
        return
    _apply(module)
    _track(module)  # a deep copy of the model holds new parameters: track them too


def _mask_before_state_dict(module: nn.Module, prefix: str, keep_vars: bool) -> None:
    _apply(module)


def _mask_after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    if not len(_KEEP_BY_PARAM):
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            keep = _KEEP_BY_PARAM.get(param)
            if keep is not None and keep.shape == param.shape:
                zero_pruned(param, keep.to(param.device), optimizer.state.get(param))
