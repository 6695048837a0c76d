#include "serve/prefix_cache.h"

#include <algorithm>

namespace mf::serve {

namespace {
constexpr uint64_t kRoot = 0x9e3779b97f4a7c15ull;  // the "parent" of a first block

uint64_t mix(uint64_t h, uint64_t v) {  // splitmix64 finaliser over h ^ v
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
}  // namespace

uint64_t PrefixCache::chain(uint64_t parent, const int64_t* ids) {
    uint64_t h = mix(parent, 0x51ed270b27ull);
    for (int64_t i = 0; i < kBlock; ++i)
        h = mix(h, static_cast<uint64_t>(ids[i]));
    return h;
}

std::vector<uint64_t> PrefixCache::match(const std::vector<int64_t>& ids, int64_t n) const {
    std::vector<uint64_t> out;
    uint64_t parent = kRoot;
    for (int64_t b = 0; (b + 1) * kBlock <= n; ++b) {
        const int64_t* blk = ids.data() + b * kBlock;
        const uint64_t h = chain(parent, blk);
        auto it = blocks_.find(h);
        if (it == blocks_.end() || it->second.parent != parent ||
            !std::equal(blk, blk + kBlock, it->second.ids.begin()))
            break;
        out.push_back(h);
        parent = h;
    }
    return out;
}

void PrefixCache::touch(const std::vector<uint64_t>& hashes) {
    for (auto it = hashes.rbegin(); it != hashes.rend(); ++it) {
        Block& b = blocks_.at(*it);
        lru_.splice(lru_.begin(), lru_, b.lru);
    }
}

int64_t PrefixCache::restore(const std::vector<int64_t>& ids, int64_t limit,
                             model::KVCache& cache) {
    if (max_bytes_ == 0 || cache.length != 0) return 0;
    limit = std::min<int64_t>({limit, static_cast<int64_t>(ids.size()), cache.capacity});
    const auto hashes = match(ids, limit);
    if (hashes.empty()) return 0;
    for (size_t bi = 0; bi < hashes.size(); ++bi) {
        const Block& b = blocks_.at(hashes[bi]);
        const int64_t at = static_cast<int64_t>(bi) * kBlock;
        for (size_t li = 0; li < cache.k.size(); ++li) {
            cache.k[li].narrow(2, at, kBlock).copy_(b.k[li]);
            cache.v[li].narrow(2, at, kBlock).copy_(b.v[li]);
        }
    }
    touch(hashes);
    cache.length = static_cast<int64_t>(hashes.size()) * kBlock;
    return cache.length;
}

void PrefixCache::insert(const std::vector<int64_t>& ids, int64_t n, const model::KVCache& cache) {
    if (max_bytes_ == 0) return;
    n = std::min<int64_t>({n, static_cast<int64_t>(ids.size()), cache.length});
    // every block of this cache has the same size: keys and values of kBlock positions per layer
    size_t block_bytes = 0;
    for (const auto& k : cache.k)
        block_bytes += 2 * static_cast<size_t>(k.numel() / k.size(2) * kBlock) * k.element_size();
    if (block_bytes > max_bytes_) return;
    std::vector<uint64_t> hashes = match(ids, n);
    uint64_t parent = hashes.empty() ? kRoot : hashes.back();
    for (int64_t bi = static_cast<int64_t>(hashes.size()); (bi + 1) * kBlock <= n; ++bi) {
        const int64_t* blk = ids.data() + bi * kBlock;
        const uint64_t h = chain(parent, blk);
        if (blocks_.count(h)) break;  // a hash collision with another chain: stop here
        Block b;
        b.parent = parent;
        b.ids.assign(blk, blk + kBlock);
        for (size_t li = 0; li < cache.k.size(); ++li) {
            b.k.push_back(cache.k[li].narrow(2, bi * kBlock, kBlock).clone());
            b.v.push_back(cache.v[li].narrow(2, bi * kBlock, kBlock).clone());
        }
        b.bytes = block_bytes;
        bytes_ += b.bytes;
        lru_.push_front(h);
        b.lru = lru_.begin();
        blocks_.emplace(h, std::move(b));
        hashes.push_back(h);
        parent = h;
    }
    touch(hashes);
    evict();
}

void PrefixCache::evict() {
    while (bytes_ > max_bytes_ && !lru_.empty()) {
        auto it = blocks_.find(lru_.back());
        bytes_ -= it->second.bytes;
        blocks_.erase(it);
        lru_.pop_back();
    }
}

}  // namespace mf::serve
