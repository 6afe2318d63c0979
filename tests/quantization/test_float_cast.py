"""fp16 / bf16 variants: parameters and buffers rounded through the format, computation stays float32."""

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.quantization import cast_weights


@pytest.mark.parametrize(("fmt", "dtype"), [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_cast_rounds_parameters_and_buffers_on_a_copy(tiny_model, fmt, dtype):
    with torch.no_grad():
        tiny_model.bn1.running_mean.uniform_(-1, 1)
        tiny_model.fc.weight[0, 0] = 1e-9  # underflows in fp16, survives in bf16
    variant = cast_weights(tiny_model, fmt)
    assert variant.conv1.weight.dtype == torch.float32
    assert torch.equal(variant.conv1.weight, tiny_model.conv1.weight.to(dtype).float())
    assert torch.equal(variant.bn1.running_mean, tiny_model.bn1.running_mean.to(dtype).float())
    assert not torch.equal(variant.conv1.weight, tiny_model.conv1.weight)
    assert (variant.fc.weight[0, 0].item() == 0.0) == (fmt == "fp16")
    assert tiny_model.fc.weight[0, 0].item() == pytest.approx(1e-9)


def test_unknown_format(tiny_model):
    with pytest.raises(ConfigError, match="fp16, bf16"):
        cast_weights(tiny_model, "fp8")
