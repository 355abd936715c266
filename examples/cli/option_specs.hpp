// The options each qgan command accepts, in one place so the commands and the argument
// fuzzer (fuzz/fuzz_cli_args.cpp) parse with the same tables; the help texts beside each
// command describe them.
#pragma once

#include <span>

#include "args.hpp"

namespace qgan_cli {

inline const option_spec quantize_option_specs[] = {
    {"-o", true, false, "--output"}, {"--method"}, {"--bits"}, {"--per-channel", false},
    {"--arch"}, {"--axis", true, true}, {"--keep", true, true}, {"--bits-for", true, true},
    {"--threads"}, {"--recalibrate"}, {"--calib-samples"}, {"--calib-seed"}, {"--rounding-inputs"},
    {"--bias-target"},
};

inline const option_spec sample_option_specs[] = {
    {"--arch"}, {"-o", true, false, "--output"}, {"-n"}, {"--seed"}, {"--z"}, {"--raw"},
    {"--columns"}, {"--act"}, {"--threads"},
};

inline const option_spec eval_option_specs[] = {
    {"--arch"}, {"--samples"}, {"--seed"}, {"--bootstrap"}, {"--weights-dir"}, {"--json", false},
    {"--act"}, {"--threads"},
};

inline const option_spec calibrate_option_specs[] = {
    {"--arch"}, {"-o", true, false, "--output"}, {"--samples"}, {"--seed"}, {"--threads"},
};

struct command_options {
  const char* command;
  std::span<const option_spec> specs;
};

/// Every command; info takes no options but --help.
inline const command_options all_command_options[] = {
    {"info", {}},
    {"quantize", quantize_option_specs},
    {"sample", sample_option_specs},
    {"eval", eval_option_specs},
    {"calibrate", calibrate_option_specs},
};

}  // namespace qgan_cli
