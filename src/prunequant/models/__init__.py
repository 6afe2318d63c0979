"""Model zoo (one module per family, each registering itself) and weights-only checkpoint I/O."""

from prunequant.models import densenet, lenet, mobilenetv2, resnet_cifar, small_cnn, vgg  # noqa: F401  (register)
from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.models.codecs import register_module_codec
from prunequant.models.registry import available_models, build, build_from_spec, register_model

__all__ = [
    "available_models",
    "build",
    "build_from_spec",
    "load_checkpoint",
    "register_model",
    "register_module_codec",
    "save_checkpoint",
]
