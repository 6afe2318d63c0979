"""Building blocks shared by the zoo: conv-BN-activation and He initialisation."""

from __future__ import annotations

from torch import nn


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv (no bias, 'same' padding for odd kernels) -> BatchNorm -> optional activation, as a Sequential."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


def init_conv_weights(model: nn.Module) -> nn.Module:
    """He-normal (fan-out) conv weights and zero conv biases; other layers keep torch defaults. In place."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


ROLES: tuple[tuple[str, type[nn.Module]], ...] = (
    ("conv_transpose", nn.modules.conv._ConvTransposeNd),
    ("conv", nn.modules.conv._ConvNd),
    ("linear", nn.Linear),
    ("batch_norm", nn.modules.batchnorm._BatchNorm),
    ("instance_norm", nn.modules.instancenorm._InstanceNorm),
    ("group_norm", nn.GroupNorm),
    ("layer_norm", nn.LayerNorm),
)
"""Layer roles, most specific first: a subclass of one of these classes is handled as that class."""

WEIGHTED_ROLES = ("conv_transpose", "conv", "linear")


def layer_role(module: nn.Module) -> str | None:
    """The role of `module` ("conv", "conv_transpose", "linear", "batch_norm", "instance_norm",
    "group_norm", "layer_norm"), found by isinstance so that user subclasses count, else None."""
    for role, cls in ROLES:
        if isinstance(module, cls):
            return role
    return None


def is_plain_layer(module: nn.Module) -> bool:
    """True for torch's own layer classes, False for user subclasses (which may add behaviour)."""
    return type(module).__module__.startswith("torch.")
