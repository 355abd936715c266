// An allocator whose value-initialization does nothing, for buffers that are sized and
// then written in full by the code that fills them: std::vector's resize() would
// otherwise zero every byte first, and for the activation tensors a generator allocates
// per layer and per batch that zeroing was a single-threaded pass over megabytes between
// two parallel layers. Explicit values (assign(n, 0), resize(n, v)) are written as usual.
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace qgan {

template <class T>
struct uninitialized_allocator : std::allocator<T> {
  using std::allocator<T>::allocator;
  template <class U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };
  /// Default-initialization: for the trivial types this is used with, no write at all.
  template <class U>
  void construct(U* at) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(at)) U;
  }
  template <class U, class... Args>
  void construct(U* at, Args&&... args) {
    ::new (static_cast<void*>(at)) U(std::forward<Args>(args)...);
  }
};

}  // namespace qgan
