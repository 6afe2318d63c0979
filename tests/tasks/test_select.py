"""select_output: the scored tensor from a tensor, tuple, list or dict of outputs."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import FlowTask
from prunequant.tasks.select import check_output_index, select_output

a, b = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 2, 2)
TASK = FlowTask()


@pytest.mark.parametrize(
    ("outputs", "index", "expected"),
    [(a, 3, a), ((a, b), 0, a), ([a, b], -1, b), ({"full": a, "coarse": b}, "coarse", b),
     ({"x": a, "y": b}, 1, b)],
)
def test_selects(outputs, index, expected):
    assert select_output(TASK, outputs, None, index, "flow") is expected


@pytest.mark.parametrize(
    ("outputs", "index"), [((a, b), 2), ({"full": a}, "coarse"), ((a, b), "full"), ((None,), 0)]
)
def test_missing_output_names_index_and_outputs(outputs, index):
    with pytest.raises(ModelError, match=f"output_index={index!r}"):
        select_output(TASK, outputs, torch.zeros(1), index, "flow")


def test_check_output_index():
    assert check_output_index(2) == 2 and check_output_index("main") == "main"
    for bad in (True, 1.0, None):
        with pytest.raises(ConfigError, match="output_index"):
            check_output_index(bad)
