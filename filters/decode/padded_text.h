// A reusable buffer for decoded text that simdjson can parse where it lies: the text is followed by
// kPadding zero bytes (simdjson reads up to SIMDJSON_PADDING bytes past the end; the walker's escape scan
// stops at a zero byte), and growing it neither zero-fills nor copies what it held.
//
// Why: a decoder that inflates into a std::string pays for zero-filling it and then the walker copies it
// into its own padded buffer — two extra passes over every decoded byte. Inflating straight into this
// buffer leaves one write (the inflate) and the parse.
#pragma once

#include <simdjson.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace edgeguard::privacy {

class PaddedText {
  public:
    static constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;

    // Room for `n` bytes of text plus the padding; what the buffer held is gone. The bytes are not
    // initialised: the caller writes them and then calls finish().
    char* prepare(size_t n) {
        size_ = 0;
        if (n + kPadding > capacity_) {
            data_.reset(new char[n + kPadding]);
            capacity_ = n + kPadding;
        }
        return data_.get();
    }

    // The first `n` prepared bytes are the text; the padding after them is zeroed.
    void finish(size_t n) {
        size_ = n;
        std::memset(data_.get() + n, 0, kPadding);
    }

    std::string_view text() const { return {data_.get(), size_}; }
    size_t capacity() const { return capacity_; }

    // Frees the memory (a worker keeps no buffer sized for one huge request).
    void release() {
        data_.reset();
        capacity_ = 0;
        size_ = 0;
    }

  private:
    std::unique_ptr<char[]> data_;
    size_t capacity_ = 0;
    size_t size_ = 0;
};

}  // namespace edgeguard::privacy
