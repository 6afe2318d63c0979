"""Quantization-aware fine-tuning: pruned zeros survive, ranges follow Alg. 2/3, scales match the weights."""

import pytest
import torch
from torch.nn.utils import prune

from prunequant.errors import ConfigError, UnsupportedLayerError
from prunequant.quantization import QuantConfig, activation_quantizers, quantization_aware_finetune, quantize
from prunequant.training import TrainConfig

FAST = TrainConfig(epochs=1, lr=0.05, max_batches_per_epoch=3)


def test_pruned_zeros_stay_zero_through_quantization_and_qat(pruned_model, blob_loaders):
    zeros = {
        name: m.weight == 0
        for name, m in pruned_model.named_modules()
        if hasattr(m, "weight") and m.weight.dim() > 1
    }
    qmodel = quantize(pruned_model, QuantConfig(w_bits=4, a_bits=8))
    start = {name: qmodel.get_submodule(name).weight.detach().clone() for name in zeros}
    result = quantization_aware_finetune(qmodel, *blob_loaders, FAST, refine_epochs=1)
    assert len(result.history) == 2 and result.refined is not None
    assert result.history[1]["lr"] == pytest.approx(0.005)
    for name, was_zero in zeros.items():
        layer = qmodel.get_submodule(name)
        assert 0.4 < was_zero.float().mean() < 0.6
        assert torch.all(layer.weight[was_zero] == 0)
        assert torch.all(layer.quantized_weight()[was_zero] == 0)
        assert not torch.equal(layer.weight[~was_zero], start[name][~was_zero])  # it did train


def test_qat_calibrates_first_and_refreshes_max_weight_scales(tiny_model, blob_loaders):
    qmodel = quantize(tiny_model, QuantConfig(w_bits=6, a_bits=6))
    quantization_aware_finetune(qmodel, *blob_loaders, FAST, refine_epochs=0)
    assert all(q.calibrated for q in activation_quantizers(qmodel))
    weight = qmodel.conv2.weight.detach()
    assert torch.equal(qmodel.conv2.weight_quantizer.scale, weight.abs().flatten(1).amax(1) / 31)


def test_ema_calibration_averages_ranges_over_training_steps(tiny_model, blob_loaders):
    qmodel = quantize(tiny_model, QuantConfig(calibration="ema"), blob_loaders[0], calib_batches=2)
    act = qmodel.relu1.act_quantizer.observer
    assert act.steps.item() == 2
    quantization_aware_finetune(qmodel, *blob_loaders, FAST, refine_epochs=0)
    assert act.steps.item() == 2 + 3  # Alg. 2: one update per training step
    weights = qmodel.conv1.weight_quantizer.observer
    assert weights.steps.item() == 1 + 3  # quantize() + three steps (Alg. 3 moving average of max|w|)
    current = qmodel.conv1.weight.detach().abs().flatten(1).amax(1)
    assert not torch.equal(weights.upper, current)  # an average over steps, not the last max


def test_qat_needs_a_quantized_model(tiny_model, blob_loaders):
    with pytest.raises(ConfigError, match="quantize"):
        quantization_aware_finetune(tiny_model, *blob_loaders, FAST)


def test_torch_prune_reparametrisations_must_be_made_permanent_first(tiny_model, blob_loaders):
    prune.l1_unstructured(tiny_model.conv2, "weight", amount=0.5)
    with pytest.raises(UnsupportedLayerError, match="make_permanent"):
        quantize(tiny_model)
    prune.remove(tiny_model.conv2, "weight")
    qmodel = quantize(tiny_model, QuantConfig(), blob_loaders[0], calib_batches=1)
    pruned = tiny_model.conv2.weight == 0
    assert torch.equal(qmodel.conv2.weight_mask, ~pruned)
    quantization_aware_finetune(qmodel, *blob_loaders, FAST, refine_epochs=0)
    assert torch.all(qmodel.conv2.quantized_weight()[pruned] == 0)


def test_qat_trains_a_dense_regressor_through_its_task(dense_model, dense_loaders, regression_task):
    from prunequant.training import Trainer, evaluate

    train, val = dense_loaders
    config = TrainConfig(epochs=2, lr=0.02, optimizer="adam")
    Trainer(dense_model, train, val, config, task=regression_task).fit()
    qmodel = quantize(dense_model, QuantConfig(w_bits=4, a_bits=4), train, calib_batches=2)
    before = evaluate(qmodel, val, regression_task).mse
    config = TrainConfig(epochs=2, lr=0.005, optimizer="adam", weight_decay=0.0)
    result = quantization_aware_finetune(qmodel, train, val, config, refine_epochs=1, task=regression_task)
    assert result.refined.primary == "mse" and "val_mse" in result.history[-1]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(qmodel, val, regression_task).mse < before
