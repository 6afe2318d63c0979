"""Masks hold in the user's own loop (no MaskCallback, nothing to call), through copies, saves, exports."""

from __future__ import annotations

import copy

import onnx
import pytest
import torch
from onnx import numpy_helper

from prunequant.errors import ModelError
from prunequant.export import export_onnx
from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.pruning.unstructured import (
    apply_masks,
    get_masks,
    make_permanent,
    prune_unstructured,
    remove_masks,
    sparsity_report,
)


def _plain_adam_loop(model, loader, steps, weight_decay=1e-2):
    """A user's loop: Adam with weight decay, no callback, no apply_masks."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    model.train()
    for step, (x, y) in enumerate(loader):
        if step >= steps:
            break
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return optimizer


def _pruned_share(model, masks):
    params = dict(model.named_parameters())
    return {name: float(params[name].detach()[~mask].eq(0).float().mean()) for name, mask in masks.items()}


def test_sparsity_holds_after_a_plain_adam_loop_with_weight_decay(tiny_model, blob_loaders):
    train, _ = blob_loaders
    result = prune_unstructured(tiny_model, 0.7)
    masks = {name: mask.clone() for name, mask in result.masks.items()}
    before = {name: tensor.detach().clone() for name, tensor in tiny_model.named_parameters()}
    optimizer = _plain_adam_loop(tiny_model, train, steps=6)
    assert _pruned_share(tiny_model, masks) == {name: 1.0 for name in masks}  # read right after the loop
    assert not torch.equal(tiny_model.conv2.weight.detach(), before["conv2.weight"])  # it trained
    for name, mask in masks.items():  # Adam's moments of pruned entries are masked too
        state = optimizer.state[dict(tiny_model.named_parameters())[name]]
        assert state["exp_avg"][~mask].eq(0).all()
    report = sparsity_report(tiny_model)
    assert report.sparsity == pytest.approx(result.sparsity) and report.mismatches == []


def test_hand_written_update_is_masked_before_the_next_forward(tiny_model):
    prune_unstructured(tiny_model, 0.5, "layer")
    mask = get_masks(tiny_model)["fc.weight"]
    with torch.no_grad():
        tiny_model.fc.weight.data += 1.0  # bypasses optimizer hooks and autograd
    assert tiny_model.fc.weight.detach()[~mask].ne(0).all()
    assert sparsity_report(tiny_model).layers["fc.weight"] == pytest.approx(0.5)  # what forward computes with
    tiny_model.eval()
    with torch.inference_mode():
        tiny_model(torch.randn(2, 1, 8, 8))
    assert tiny_model.fc.weight.detach()[~mask].eq(0).all()


def test_loading_dense_weights_into_a_masked_model_keeps_it_masked(tiny_model):
    dense = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    prune_unstructured(tiny_model, 0.5, "layer")
    tiny_model.load_state_dict(dense)
    assert sparsity_report(tiny_model).layers["conv2.weight"] == pytest.approx(0.5)
    assert tiny_model.state_dict()["conv2.weight"].eq(0).float().mean() == pytest.approx(0.5)


def test_a_layer_used_twice_before_backward_keeps_a_valid_graph(tiny_model):
    prune_unstructured(tiny_model, 0.5, "layer")
    x = torch.randn(4, 1, 8, 8)
    (tiny_model(x).sum() + tiny_model(x).pow(2).sum()).backward()
    assert tiny_model.conv1.weight.grad is not None


def test_sparsity_report_says_when_weights_do_not_follow_their_mask(tiny_model):
    prune_unstructured(tiny_model, 0.7, "layer")
    tiny_model.fc._forward_pre_hooks.clear()  # a mask no hook holds any more
    with torch.no_grad():
        tiny_model.fc.weight.data.fill_(1.0)
    report = sparsity_report(tiny_model)
    assert report.layers["fc.weight"] == 0.0 and report.mask_sparsity["fc.weight"] == pytest.approx(
        0.703, 0.01
    )
    assert report.mismatches == ["fc.weight: mask says 70.3%, weights have 0.0%"]


def test_sparsity_report_counts_zeros_of_unmasked_models(tiny_model):
    with torch.no_grad():
        tiny_model.fc.weight[:2] = 0.0
    report = sparsity_report(tiny_model)
    assert report.layers["fc.weight"] == 0.5 and report.masked == [] and report.mismatches == []


def test_deep_copy_holds_its_own_masks(tiny_model, blob_loaders):
    train, _ = blob_loaders
    prune_unstructured(tiny_model, 0.6)
    clone = copy.deepcopy(tiny_model)
    _plain_adam_loop(clone, train, steps=3)
    assert _pruned_share(clone, get_masks(clone)) == {name: 1.0 for name in get_masks(clone)}
    assert get_masks(clone)["fc.weight"] is not get_masks(tiny_model)["fc.weight"]


def test_checkpoint_round_trip_after_training_loads_with_weights_only(tmp_path, blob_loaders):
    train, _ = blob_loaders
    torch.manual_seed(0)
    model = build("small_cnn", num_classes=4, in_channels=1, input_size=8)
    prune_unstructured(model, 0.6)
    masks = {name: mask.clone() for name, mask in get_masks(model).items()}
    optimizer = _plain_adam_loop(model, train, steps=2)
    with torch.no_grad():
        model.classifier[3].weight.data += 0.5  # after the last step, before saving
    save_checkpoint(model, tmp_path / "m.pt")
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert optimizer is not None and "fc.weight_pq_mask" not in str(state)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    params = dict(loaded.named_parameters())
    assert all(params[name].detach()[~mask].eq(0).all() for name, mask in masks.items())


def test_onnx_export_of_a_masked_model_holds_the_zeros(tmp_path, tiny_model):
    prune_unstructured(tiny_model, 0.5, "layer")
    with torch.no_grad():
        tiny_model.conv2.weight.data += 1.0
    tiny_model.eval()
    export_onnx(tiny_model, tmp_path / "m.onnx", torch.randn(1, 1, 8, 8))
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "m.onnx")).graph.initializer]
    conv2 = next(w for w in weights if w.shape == (16, 8, 3, 3))
    assert (conv2 == 0).mean() == pytest.approx(0.5)


@pytest.mark.parametrize("drop", [remove_masks, make_permanent])
def test_dropping_masks_bakes_them_and_removes_the_hooks(tiny_model, drop):
    prune_unstructured(tiny_model, 0.5, "layer")
    with torch.no_grad():
        tiny_model.fc.weight.data += 1.0
    drop(tiny_model)
    assert not get_masks(tiny_model) and not tiny_model.fc._forward_pre_hooks
    assert float(tiny_model.fc.weight.eq(0).float().mean()) == 0.5


def test_apply_masks_zeroes_weights_and_optimizer_state_now(tiny_model):
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=0.1, momentum=0.9)
    tiny_model(torch.randn(2, 1, 8, 8)).sum().backward()
    optimizer.step()  # momentum built before pruning
    prune_unstructured(tiny_model, 0.5, "layer")
    mask = get_masks(tiny_model)["fc.weight"]
    with torch.no_grad():
        tiny_model.fc.weight.data += 1.0
    apply_masks(tiny_model, optimizer)
    assert tiny_model.fc.weight.detach()[~mask].eq(0).all()
    assert optimizer.state[tiny_model.fc.weight]["momentum_buffer"][~mask].eq(0).all()


def test_a_layer_reshaped_under_its_mask_is_one_clear_error(tiny_model):
    prune_unstructured(tiny_model, 0.5, "layer")
    tiny_model.fc.weight = torch.nn.Parameter(torch.ones(2, 16))
    with pytest.raises(ModelError, match="reshaped after pruning; call make_permanent"):
        tiny_model.fc(torch.randn(1, 16))


def test_channel_pruning_slices_the_masks_with_their_weights(tiny_model, blob_loaders):
    from prunequant.pruning import prune_channels

    train, _ = blob_loaders
    prune_unstructured(tiny_model, 0.5, "layer")
    small = prune_channels(tiny_model, torch.randn(2, 1, 8, 8), 0.5)
    masks = get_masks(small)
    assert masks["conv2.weight"].shape == small.conv2.weight.shape == (8, 4, 3, 3)
    _plain_adam_loop(small, train, steps=2)
    assert _pruned_share(small, masks) == {name: 1.0 for name in masks}
    assert get_masks(tiny_model)["conv2.weight"].shape == (16, 8, 3, 3)  # the original keeps its own


def test_quantizing_a_masked_model_after_a_plain_loop_keeps_its_zeros(tiny_model, blob_loaders):
    from prunequant.quantization import QuantConfig, quantize

    train, _ = blob_loaders
    prune_unstructured(tiny_model, 0.6, "layer")
    masks = {name: mask.clone() for name, mask in get_masks(tiny_model).items()}
    _plain_adam_loop(tiny_model, train, steps=2)
    qmodel = quantize(tiny_model, QuantConfig(8, 8), calib_loader=train, calib_batches=1)
    assert torch.equal(qmodel.conv2.weight_mask, masks["conv2.weight"])  # preserved through QAT too
    assert qmodel.conv2.quantized_weight().detach()[~masks["conv2.weight"]].eq(0).all()
