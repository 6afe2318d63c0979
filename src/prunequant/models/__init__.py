"""Model zoo (one module per family, each registering itself) and weights-only checkpoint I/O."""

from prunequant.models import (  # noqa: F401  (register the zoo families and the seeds' systems)
    conv_vae,
    densenet,
    frrnet,
    lenet,
    lidarflow,
    mobilenetv2,
    resnet_cifar,
    small_cnn,
    tiny_yolo,
    unet,
    vgg,
)
from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.models.codecs import register_module_codec
from prunequant.models.registry import available_models, build, build_from_spec, model_task, register_model

__all__ = [
    "available_models",
    "build",
    "build_from_spec",
    "load_checkpoint",
    "model_task",
    "register_model",
    "register_module_codec",
    "save_checkpoint",
]
