"""Compressed model storage: a zip container whose tensors are written by pluggable codecs.

Codecs: dense, sparse (bitmask + values), bitmask, and quantized (bit-packed N-bit codes + scales).
"""

from prunequant.export.storage.bitpack import pack_bits, unpack_bits
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
from prunequant.export.storage.quantized_codec import BitmaskCodec, QuantizedCodec, save_quantized
from prunequant.export.storage.sparse import break_even_density, decode_sparse, encode_sparse

__all__ = [
    "BitmaskCodec",
    "QuantizedCodec",
    "pack_bits",
    "save_quantized",
    "unpack_bits",
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
