// Quality metrics of generated images that know no network: Fréchet distance (with its
// bootstrap spread), Inception Score and PSNR. The caller runs its own feature extractor
// or classifier and hands over features, probabilities or logits, and 8-bit pixels.
#pragma once

#include "qgan/eval/frechet.hpp"
#include "qgan/eval/frechet_bootstrap.hpp"
#include "qgan/eval/inception_score.hpp"
#include "qgan/eval/psnr.hpp"
