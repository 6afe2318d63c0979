"""Profiling: params, MACs/FLOPs, activation memory and latency, per layer and per module group."""

from prunequant.profiling.profiler import profile
from prunequant.profiling.report import ProfileReport

__all__ = ["ProfileReport", "profile"]
