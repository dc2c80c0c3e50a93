// A distinct-value estimate in 256 bytes (HyperLogLog, p = 8, about 6.5% standard error). Single writer,
// any number of readers: registers are relaxed atomics, so a reader on another thread sees a slightly old
// but never torn sketch.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>

namespace edgeguard::privacy::learn {

class HyperLogLog {
  public:
    static constexpr unsigned kBits = 8;
    static constexpr unsigned kRegisters = 1u << kBits;

    // `hash` must be a well-mixed 64-bit hash of the value; the value itself is never seen here.
    void add(uint64_t hash) {
        const unsigned index = static_cast<unsigned>(hash >> (64 - kBits));
        const uint64_t rest = (hash << kBits) | (uint64_t{1} << (kBits - 1));  // never all zero
        const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
        if (rank > registers_[index].load(std::memory_order_relaxed))
            registers_[index].store(rank, std::memory_order_relaxed);
    }

    // Register-wise maximum into `into` (a merge of per-worker sketches).
    void merge_into(uint8_t (&into)[kRegisters]) const {
        for (unsigned i = 0; i < kRegisters; ++i) {
            const uint8_t r = registers_[i].load(std::memory_order_relaxed);
            if (r > into[i]) into[i] = r;
        }
    }

    static uint64_t estimate(const uint8_t (&registers)[kRegisters]) {
        double sum = 0;
        unsigned zeros = 0;
        for (unsigned i = 0; i < kRegisters; ++i) {
            sum += std::ldexp(1.0, -registers[i]);
            if (registers[i] == 0) ++zeros;
        }
        const double m = kRegisters;
        const double alpha = 0.7213 / (1.0 + 1.079 / m);
        double e = alpha * m * m / sum;
        // Small cardinalities: linear counting over the empty registers is far more accurate.
        if (e <= 2.5 * m && zeros != 0) e = m * std::log(m / zeros);
        return static_cast<uint64_t>(e + 0.5);
    }

  private:
    std::atomic<uint8_t> registers_[kRegisters] = {};
};

// A 64-bit finaliser (splitmix64): spreads a cheap string hash over all bits, as the sketch needs.
inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

}  // namespace edgeguard::privacy::learn
