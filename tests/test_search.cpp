// Bit-width search over quality callbacks (qgan/search/precision_search.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "qgan/search/precision_search.hpp"

using namespace qgan::search;

TEST_CASE("search: the lowest passing width stops at the first pass and records the path") {
  const std::vector<int> widths{1, 2, 3, 4, 8};
  const std::map<int, double> fid{{1, 90.0}, {2, 19.0}, {3, 16.0}, {4, 15.5}, {8, 15.0}};
  int calls = 0;
  const search_result r = lowest_passing_bits(widths, [&](int bits) { ++calls; return fid.at(bits); }, 20.0);
  REQUIRE(r.bits == 2);
  REQUIRE(calls == 2);
  REQUIRE(r.path.size() == 2);
  CHECK_FALSE(r.path[0].passed);
  CHECK(r.path[1].passed);
  CHECK(r.path[1].score == 19.0);

  const search_result none = lowest_passing_bits(widths, [&](int bits) { return fid.at(bits); }, 10.0);
  CHECK_FALSE(none.bits);
  CHECK(none.path.size() == widths.size());
  const search_result nan = lowest_passing_bits(widths, [](int) { return std::nan(""); }, 10.0);
  CHECK_FALSE(nan.bits);

  CHECK_THROWS_WITH(lowest_passing_bits(std::vector<int>{2, 1}, [](int) { return 0.0; }, 1.0),
                    Catch::Contains("strictly ascending"));
  CHECK_THROWS_WITH(lowest_passing_bits(std::vector<int>{}, [](int) { return 0.0; }, 1.0), Catch::Contains("no candidate"));
}

TEST_CASE("search: per-layer widths under a byte budget, exact and greedy") {
  // Three layers; the big one is insensitive, the small ones are not.
  const std::vector<layer_shape> layers{{"big", 100000, 100, 1024, 128}, {"first", 4000, 10, 100, 256},
                                        {"last", 1000, 1, 256, 1}};
  const std::vector<int> widths{1, 2, 4, 8};
  const std::vector<std::vector<double>> cost{{5, 2, 1, 0}, {40, 10, 2, 0}, {80, 20, 3, 0}};
  const auto measured = [&](std::size_t l, std::size_t i) { return cost[l][i]; };
  std::uint64_t all_two_bits = 0;
  for (const auto& l : layers) all_two_bits += packed_bytes(l, 2);
  const layer_allocation exact = layer_bits_under_budget(layers, widths, measured, all_two_bits);
  CHECK(exact.exact);
  CHECK(exact.bytes <= all_two_bits);
  // Spend the big layer's byte on the small ones: big at 1 bit, the others wide.
  CHECK(exact.bits == std::vector<int>{1, 8, 8});
  CHECK(exact.cost == 5.0);

  // Check the exhaustive answer by brute force of our own.
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t a = 0; a < 4; ++a)
    for (std::size_t b = 0; b < 4; ++b)
      for (std::size_t c = 0; c < 4; ++c) {
        const std::uint64_t bytes = packed_bytes(layers[0], widths[a]) + packed_bytes(layers[1], widths[b]) +
                                    packed_bytes(layers[2], widths[c]);
        if (bytes <= all_two_bits) best = std::min(best, cost[0][a] + cost[1][b] + cost[2][c]);
      }
  CHECK(exact.cost == best);

  const layer_allocation greedy = layer_bits_under_budget(layers, widths, measured, all_two_bits, 1);
  CHECK_FALSE(greedy.exact);
  CHECK(greedy.bytes <= all_two_bits);
  CHECK(greedy.cost >= exact.cost);
  CHECK(greedy.bits == std::vector<int>{1, 8, 8});

  std::uint64_t all_one_bit = 0;
  for (const auto& l : layers) all_one_bit += packed_bytes(l, 1);
  CHECK_THROWS_WITH(layer_bits_under_budget(layers, widths, measured, all_one_bit - 1), Catch::Contains("over the budget"));
  CHECK_THROWS_WITH(layer_bits_under_budget(layers, widths, [](std::size_t, std::size_t) { return std::nan(""); }, all_two_bits),
                    Catch::Contains("not finite"));
}

TEST_CASE("search: PBGen binarizes the wide middle deconvolutions of the DCGAN") {
  const std::vector<layer_shape> dcgan{{"deconv1", 409600, 256, 100, 256},
                                       {"deconv2", 524288, 128, 1024, 128},
                                       {"deconv3", 131072, 64, 512, 64},
                                       {"deconv4", 1024, 1, 256, 1}};
  CHECK(pbgen_binarize(dcgan) == std::vector<bool>{false, true, true, false});
  CHECK(pbgen_binarize(dcgan, 100, 1) == std::vector<bool>{true, true, true, true});
  CHECK(pbgen_binarize(dcgan, 1025, 1) == std::vector<bool>{false, false, false, false});
}
