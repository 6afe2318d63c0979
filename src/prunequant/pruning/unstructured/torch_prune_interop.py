"""Interoperation with torch.nn.utils.prune (weight_orig * weight_mask reparametrisation) both ways."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn
from torch.nn.utils import prune as torch_prune

from prunequant.pruning.unstructured.masks import masked_params, remove_masks, set_mask


def torch_pruned_params(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """(parameter name, module, param) of every tensor reparametrised by torch.nn.utils.prune."""
    for module_name, module in model.named_modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                param = hook._tensor_name
                yield (f"{module_name}.{param}" if module_name else param), module, param


def is_torch_pruned(model: nn.Module) -> bool:
    """True when torch.nn.utils.prune has reparametrised any parameter of `model`."""
    return next(torch_pruned_params(model), None) is not None


def from_torch_prune(model: nn.Module) -> nn.Module:
    """Turn torch's `<p>_orig`/`<p>_mask` reparametrisation into prunequant masks (same keep/prune). In place.

    Afterwards `<p>` is a plain parameter again (state_dict keys as in the unpruned model), with its pruned
    entries at zero and a prunequant mask attached.
    """
    for _, module, param in list(torch_pruned_params(model)):
        mask = getattr(module, param + "_mask").detach().ne(0)
        torch_prune.remove(module, param)
        set_mask(module, param, mask)
    return model


def to_torch_prune(model: nn.Module) -> nn.Module:
    """Turn prunequant masks into torch.nn.utils.prune reparametrisation (`custom_from_mask`). In place.

    The torch mask buffer `<p>_mask` is a float tensor of the parameter's dtype, as torch creates it.
    """
    items = list(masked_params(model))
    remove_masks(model)
    for item in items:
        weight = getattr(item.module, item.param)
        torch_prune.custom_from_mask(item.module, item.param, item.mask.to(weight.dtype))
    return model
