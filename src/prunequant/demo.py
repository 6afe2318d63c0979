"""`make demo`: profile and evaluate the shipped Fashion-MNIST baseline, then run the demo recipe."""

from __future__ import annotations

import sys
import time

import torch
from rich.console import Console

from prunequant.builtin import resolve_checkpoint
from prunequant.data import load_dataset, make_loaders
from prunequant.errors import PrunequantError
from prunequant.models import load_checkpoint
from prunequant.profiling import profile
from prunequant.training import evaluate


def main() -> int:
    console = Console()
    start = time.perf_counter()
    try:
        model, meta = load_checkpoint(resolve_checkpoint("builtin:fashion-mnist"))
        splits = load_dataset("fashion-mnist")
    except PrunequantError as err:
        console.print(f"[red]demo: {err}[/red]")
        return 2
    console.rule("prunequant demo: Fashion-MNIST baseline")
    console.print(f"model {meta.get('arch')}  trained for {meta.get('train', {}).get('epochs')} epochs")
    report = profile(model, torch.randn(1, *splits.input_shape))
    console.print(report.table())
    result = evaluate(model, make_loaders(splits, 256).test)
    console.print(
        f"test top-1 [bold]{100 * result.top1:.2f}%[/bold]  top-5 {100 * result.top5:.2f}%  "
        f"loss {result.loss:.4f}  (n={result.n})"
    )
    console.print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
