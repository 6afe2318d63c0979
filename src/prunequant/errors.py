"""Typed errors. Every user mistake raises a subclass of PrunequantError; the CLI prints one line, exit 2."""


class PrunequantError(Exception):
    """Base class of every error caused by user input (config, data, model, checkpoint)."""


class ConfigError(PrunequantError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class DataError(PrunequantError):
    """A dataset is missing, corrupt or in an unexpected format."""


class ModelError(PrunequantError):
    """A model name, factory or architecture cannot be resolved or built."""


class CheckpointError(PrunequantError):
    """A checkpoint file is missing, unreadable or inconsistent with its model."""


class UnsupportedLayerError(PrunequantError):
    """A layer or op cannot be handled by the requested transformation."""


class ExportError(PrunequantError):
    """A model cannot be exported or run on the target runtime."""


class StoreError(ConfigError):
    """A results database is not prunequant's, is damaged, or cannot be opened."""


class RunLockedError(StoreError):
    """Another live process holds the run directory's lock."""


class OutputError(ConfigError):
    """An output path is one of the inputs, or cannot be written."""


class NothingPrunedError(UnsupportedLayerError):
    """Pruning was asked for but removed nothing (every layer unsupported or skipped)."""


class ForwardError(ModelError):
    """The model's own forward pass raised on the given inputs."""
