// stb_image_write's implementation (its deflate and CRC, for dcgan/png_encoder.cpp),
// compiled from Debian's libstb-dev header instead of linked from libstb, which exists for
// the host architecture only. Built without qgan's warnings (examples/CMakeLists.txt).
//
// stb's deflate keeps a growing array per hash bucket (16,384 of them) and a growing
// output, all through malloc/realloc/free: on a grid of samples a third of its time went
// to the allocator and to page faults on fresh memory, more with two threads allocating at
// once. stb lets its user supply the allocator, so while `stb_zlib_compress` runs, stb's
// blocks come from a per-thread bump arena that keeps its pages between calls; a free is a
// no-op and the arena is reset when the call ends. Outside that call stb gets malloc.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "dcgan/stb_zlib.hpp"
#include "qgan/core/error.hpp"

namespace dcgan::detail {
namespace {

class bump_arena {
 public:
  void* allocate(std::size_t bytes) {
    bytes = round_up(std::max<std::size_t>(bytes, 1));
    while (current_ < chunks_.size() && used_ + bytes > chunks_[current_].size) {
      ++current_;
      used_ = 0;
    }
    if (current_ == chunks_.size()) {
      const std::size_t size = std::max(bytes, chunk_bytes);
      chunks_.push_back({std::make_unique_for_overwrite<unsigned char[]>(size), size});
      used_ = 0;
    }
    unsigned char* block = chunks_[current_].bytes.get() + used_;
    used_ += bytes;
    last_ = block;
    return block;
  }

  /// The newest block grows in place (stb's output buffer, between pushes into buckets);
  /// any other moves to a new block.
  void* reallocate(void* block, std::size_t old_bytes, std::size_t new_bytes) {
    if (block == nullptr) return allocate(new_bytes);
    if (block == last_) {
      const auto start = static_cast<std::size_t>(static_cast<unsigned char*>(block) - chunks_[current_].bytes.get());
      const std::size_t end = start + round_up(std::max<std::size_t>(new_bytes, 1));
      if (end <= chunks_[current_].size) {
        used_ = end;
        return block;
      }
    }
    void* moved = allocate(new_bytes);
    std::memcpy(moved, block, std::min(old_bytes, new_bytes));
    return moved;
  }

  void reset() {
    current_ = 0;
    used_ = 0;
    last_ = nullptr;
  }

  bool active = false;

 private:
  static constexpr std::size_t chunk_bytes = std::size_t{1} << 20;
  static std::size_t round_up(std::size_t bytes) { return (bytes + 15) & ~std::size_t{15}; }
  struct chunk {
    std::unique_ptr<unsigned char[]> bytes;
    std::size_t size;
  };
  std::vector<chunk> chunks_;
  std::size_t current_ = 0, used_ = 0;
  void* last_ = nullptr;
};

thread_local bump_arena stb_arena;

void* stb_malloc(std::size_t bytes) { return stb_arena.active ? stb_arena.allocate(bytes) : std::malloc(bytes); }
void* stb_realloc(void* block, std::size_t old_bytes, std::size_t new_bytes) {
  return stb_arena.active ? stb_arena.reallocate(block, old_bytes, new_bytes) : std::realloc(block, new_bytes);
}
void stb_free(void* block) {
  if (!stb_arena.active) std::free(block);
}

}  // namespace
}  // namespace dcgan::detail

#define STBIW_MALLOC(bytes) dcgan::detail::stb_malloc(bytes)
#define STBIW_REALLOC_SIZED(block, old_bytes, new_bytes) dcgan::detail::stb_realloc(block, old_bytes, new_bytes)
#define STBIW_FREE(block) dcgan::detail::stb_free(block)
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace dcgan::detail {

std::vector<std::uint8_t> stb_zlib_compress(std::span<const std::uint8_t> data, int level) {
  if (data.size() > static_cast<std::size_t>(INT32_MAX)) {
    qgan::detail::throw_error("PNG encoder: ", data.size(), " bytes is more than stb's deflate takes in one call");
  }
  struct arena_scope {
    arena_scope() { stb_arena.active = true; }
    ~arena_scope() {
      stb_arena.active = false;
      stb_arena.reset();
    }
  } scope;
  int length = 0;
  // stb reads its input only; its signature predates const.
  const unsigned char* zlib = stbi_zlib_compress(const_cast<unsigned char*>(data.data()), static_cast<int>(data.size()), &length, level);
  if (zlib == nullptr) qgan::detail::throw_error("PNG encoder: stb's deflate could not allocate its buffers");
  return {zlib, zlib + length};
}

std::uint32_t png_crc32(const unsigned char* bytes, std::size_t size) {
  return stbiw__crc32(const_cast<unsigned char*>(bytes), static_cast<int>(size));
}

}  // namespace dcgan::detail
