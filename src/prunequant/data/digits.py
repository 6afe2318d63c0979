"""scikit-learn's bundled 8x8 handwritten digits (1x8x8, 10 classes), available when scikit-learn is."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prunequant.data.optional import require
from prunequant.data.registry import register_dataset
from prunequant.data.splits import RawDataset
from prunequant.validation import check_fraction


@register_dataset("digits", reads_files=False)
def load_digits(data_dir: Path | None, seed: int, *, test_fraction: float = 0.2) -> RawDataset:
    """1797 digit images scaled to [0, 1]; the test split (`test_fraction`) is carved by seed."""
    test_fraction = check_fraction("test_fraction", test_fraction)
    bunch = require("sklearn.datasets", "scikit-learn", "the digits dataset").load_digits()
    return RawDataset(
        train_images=(np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None],
        train_labels=np.asarray(bunch.target),
        classes=tuple(str(name) for name in bunch.target_names),
        test_fraction=test_fraction,
    )
