"""Pruning: unstructured (magnitude masks) and structured (physical removal); re-exports both public APIs."""

from prunequant.pruning.structured import *  # noqa: F403
from prunequant.pruning.structured import __all__ as _structured_all
from prunequant.pruning.unstructured import *  # noqa: F403
from prunequant.pruning.unstructured import __all__ as _unstructured_all

__all__ = [*_unstructured_all, *_structured_all]
