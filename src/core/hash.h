// Stable hashes. xxh64 is the XXH64 algorithm (same output on every machine and run), used for
// sharding by sample id and for hash tables that must be deterministic. sha256_hex is the
// content hash for lineage and exact dedup (OpenSSL).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mf {

uint64_t xxh64(const void* data, size_t len, uint64_t seed = 0);
inline uint64_t xxh64(std::string_view s, uint64_t seed = 0) {
    return xxh64(s.data(), s.size(), seed);
}

// Lower-case hex SHA-256 of the bytes.
std::string sha256_hex(std::string_view bytes);

// Incremental SHA-256 (for files streamed in blocks).
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, size_t len);
    std::string hex_digest();  // finishes; call once

  private:
    void* ctx_;
};

}  // namespace mf
