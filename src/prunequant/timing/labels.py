"""What a speed column says for forms that cannot run faster, so they are never shown as a speedup."""

NO_SPEED_GAIN_DENSE = "no speed gain: dense kernels"
"""Masked (unstructured) zeros: the dense conv / matmul kernels do the same work on zeros."""
FAKE_QUANT_SPEED = "fake-quant: not a deployable speed"
"""Eager fake quantization simulates N-bit arithmetic in float; deploy as int8 ONNX / PT2E to time it."""
FLOAT_CAST_SPEED = "float cast: accuracy variant, no speed gain on this CPU"
"""fp16 / bf16 weights rounded back to float32 (and slower than fp32 on CPUs without AMX / AVX-512)."""
BASELINE_SPEED = "baseline"
