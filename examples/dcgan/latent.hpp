// Latent vectors from a seed, the same on every platform: the library's generator
// (qgan/core/random.hpp); any other tool can reproduce them, or pass its own z with `--z`.
#pragma once

#include "qgan/core/random.hpp"

namespace dcgan {

using qgan::normal_latents;
using qgan::splitmix64;

}  // namespace dcgan
