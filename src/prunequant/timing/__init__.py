"""One way to time models everywhere: warm-up, interleaved rounds, median and p10-p90 spread, speedups as
baseline_ms / candidate_ms (> 1 = faster), a `noisy` flag, and a 1-thread fallback on a busy machine."""

from prunequant.timing.labels import BASELINE_SPEED, FAKE_QUANT_SPEED, FLOAT_CAST_SPEED, NO_SPEED_GAIN_DENSE
from prunequant.timing.rounds import Comparison, Timing, compare, measure, round_order
from prunequant.timing.stats import NOISY_SPREAD, Speedup, Spread, percentile
from prunequant.timing.threads import ThreadPlan, available_cores, load_average, plan_threads, torch_threads

__all__ = [
    "BASELINE_SPEED",
    "FAKE_QUANT_SPEED",
    "FLOAT_CAST_SPEED",
    "NO_SPEED_GAIN_DENSE",
    "NOISY_SPREAD",
    "Comparison",
    "Speedup",
    "Spread",
    "ThreadPlan",
    "Timing",
    "available_cores",
    "compare",
    "load_average",
    "measure",
    "percentile",
    "plan_threads",
    "round_order",
    "torch_threads",
]
