// RAII owners for libbpf objects: every skeleton, link and ring buffer has exactly one owner,
// and it is destroyed on every path (including early error returns).
#ifndef TUNNELGUARD_AGENT_BPF_OWNERS_H_
#define TUNNELGUARD_AGENT_BPF_OWNERS_H_

#include <bpf/libbpf.h>

#include <memory>

namespace tg {

struct BpfLinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
// Destroying a link detaches it, unless it was pinned (a pin keeps its own reference).
using BpfLink = std::unique_ptr<bpf_link, BpfLinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBuffer = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// A generated skeleton `struct x`. Its x__destroy() is a static function of the generated
// header, so loaders declare the deleter in their header and define it next to the skeleton:
//   header:  struct x;  template <> void SkeletonDeleter<x>::operator()(x*) const;
//   .cc:     template <> void SkeletonDeleter<x>::operator()(x* s) const { x__destroy(s); }
// This keeps generated code out of every header.
template <typename T>
struct SkeletonDeleter {
  void operator()(T* skel) const;
};
template <typename T>
using Skeleton = std::unique_ptr<T, SkeletonDeleter<T>>;

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_BPF_OWNERS_H_
