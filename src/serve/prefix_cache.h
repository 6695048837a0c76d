// Automatic prefix caching: the keys and values of prompt prefixes, kept across requests, so a
// prompt that starts like an earlier one (a chat template's system prompt, the reformat
// pipeline's fixed instructions, an earlier turn of the same conversation) only prefills the
// positions after the shared part.
//
// Prefixes are stored in blocks of kBlock positions, chained by a hash of everything before them
// (as vLLM's automatic prefix caching does): two prompts that share the first n blocks share those
// n cached blocks. A block is reused only when its tokens and its parent block both match, so a
// hash collision cannot hand out the wrong keys. Blocks are evicted least recently used beyond a
// byte budget; a block is always touched after its descendants, so children go before parents.
//
// Keys and values of position t depend only on tokens 0..t (causal attention), so cached blocks
// are exactly what a fresh prefill of those positions computes, up to the summation order of the
// forward that produced them. Only token positions before a prompt's first image are cached
// (an image expands to many positions whose values depend on its pixels).
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "model/decoder.h"

namespace mf::serve {

class PrefixCache {
  public:
    static constexpr int64_t kBlock = 16;

    // max_bytes 0 disables the cache (restore returns 0, insert keeps nothing).
    explicit PrefixCache(size_t max_bytes) : max_bytes_(max_bytes) {}

    // Copies the keys and values of the longest cached whole-block prefix of ids[0, limit) into
    // `cache` (batch 1, empty) at positions 0..P and sets cache.length = P. Returns P.
    int64_t restore(const std::vector<int64_t>& ids, int64_t limit, model::KVCache& cache);

    // Keeps the whole blocks of ids[0, n) that are not cached yet, copied out of `cache` (which
    // holds their keys and values at positions 0..n), and evicts beyond the budget.
    void insert(const std::vector<int64_t>& ids, int64_t n, const model::KVCache& cache);

    size_t bytes() const { return bytes_; }
    size_t blocks() const { return blocks_.size(); }

  private:
    struct Block {
        uint64_t parent = 0;
        std::vector<int64_t> ids;           // the block's tokens (collision check)
        std::vector<torch::Tensor> k, v;    // per layer [1, kvH, kBlock, D]
        std::list<uint64_t>::iterator lru;  // position in lru_ (front = most recent)
        size_t bytes = 0;
    };
    static uint64_t chain(uint64_t parent, const int64_t* ids);
    // Hashes of the whole blocks of ids[0, n) that are cached in an unbroken chain from 0.
    std::vector<uint64_t> match(const std::vector<int64_t>& ids, int64_t n) const;
    void touch(const std::vector<uint64_t>& chain_hashes);  // deepest first, root most recent
    void evict();

    size_t max_bytes_;
    size_t bytes_ = 0;
    std::unordered_map<uint64_t, Block> blocks_;
    std::list<uint64_t> lru_;
};

}  // namespace mf::serve
