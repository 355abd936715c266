// Built with AVX-512 flags: its instantiations of the front doors use AVX-512. If any of
// them shared a symbol with the baseline unit's, the linker could keep this body for the
// baseline caller, which then dies with SIGILL on a CPU without AVX-512.
#include "front_doors.hpp"

std::uint64_t wide_unit_digest() { return odr_check::run_front_doors(); }
