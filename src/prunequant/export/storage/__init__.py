"""Compressed model storage: a zip container whose tensors are written by pluggable codecs (dense, sparse)."""

from prunequant.export.storage.container import (
    DenseCodec,
    SparseCodec,
    TensorCodec,
    compressed_size_report,
    default_codec,
    load_compressed,
    register_tensor_codec,
    save_compressed,
    tensor_codec,
)
from prunequant.export.storage.sparse import break_even_density, decode_sparse, encode_sparse

__all__ = [
    "DenseCodec",
    "SparseCodec",
    "TensorCodec",
    "break_even_density",
    "compressed_size_report",
    "decode_sparse",
    "default_codec",
    "encode_sparse",
    "load_compressed",
    "register_tensor_codec",
    "save_compressed",
    "tensor_codec",
]
