// The .qgan model file: one file holds a generator's packed (quantized) weights, the float
// tensors left unquantized (biases, BatchNorm), raw tensors of any other dtype passed through
// untouched (BatchNorm's I64 num_batches_tracked) and string metadata, bit-exactly. The
// byte layout, versioning rule and validation rules are specified in docs/qgan-format.md.
// This header gathers the pieces, each of which may be included alone:
//   qgan_format.hpp   the byte layout: constants, field offsets, dtype codes, checksums
//   qgan_model.hpp    qgan_model and its entries, in memory
//   qgan_reader.hpp   read_qgan, parse_qgan
//   qgan_writer.hpp   write_qgan, serialize_qgan, qgan_stream_writer
// None of them needs a JSON library: dtypes come from qgan/io/dtype.hpp, not safetensors.
#pragma once

#include "qgan/io/qgan_format.hpp"
#include "qgan/io/qgan_model.hpp"
#include "qgan/io/qgan_reader.hpp"
#include "qgan/io/qgan_writer.hpp"
