#include "filters/decode/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>

namespace edgeguard::privacy {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMinRoom = 16 * 1024;
constexpr int kGzipWindowBits = 15 + 16;  // 15-bit window, gzip wrapper only (no zlib/raw autodetect)

// zlib counts in uInt; feed at most this much per call so huge inputs work on any platform.
constexpr size_t kMaxFeed = std::numeric_limits<uInt>::max() / 2;

// gzip header flag FHCRC: zlib verifies the header CRC16, libdeflate skips it, so such members take the
// zlib path to keep one verdict for every input.
constexpr uint8_t kGzipFlagHeaderCrc = 0x02;
constexpr size_t kGzipHeaderBytes = 10;
constexpr size_t kGzipTrailerBytes = 8;

struct DecompressorDeleter {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

// One libdeflate decompressor per thread (about 10 KB of tables), made on first use.
libdeflate_decompressor* thread_decompressor() {
    thread_local std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> d(libdeflate_alloc_decompressor());
    return d.get();
}

// The fast path for a well-formed member whose trailer's ISIZE fits under the cap: libdeflate inflates the
// whole buffer at once (2-3x zlib's speed, CRC-32 included) into exactly ISIZE bytes. ISIZE comes from the
// client and is only a size hint: libdeflate checks it and the CRC, and a stream that would need more room
// fails with INSUFFICIENT_SPACE, so no allocation exceeds the cap. Anything but a clean success returns
// nullopt and the caller takes the zlib path, whose statuses and messages stay the only ones clients see.
// The member's ISIZE when the fast path may take it (no header CRC, ISIZE within the cap), else nullopt.
std::optional<size_t> whole_member_size(std::string_view gz, uint64_t max_output) {
    if (gz.size() < kGzipHeaderBytes + kGzipTrailerBytes) return std::nullopt;
    if (static_cast<uint8_t>(gz[3]) & kGzipFlagHeaderCrc) return std::nullopt;
    const auto* trailer = reinterpret_cast<const uint8_t*>(gz.data() + gz.size() - 4);
    const uint64_t isize = uint64_t{trailer[0]} | (uint64_t{trailer[1]} << 8) | (uint64_t{trailer[2]} << 16) |
                           (uint64_t{trailer[3]} << 24);
    if (isize > max_output) return std::nullopt;
    return static_cast<size_t>(isize);
}

// Inflates the member into exactly `isize` bytes at `out`; false on anything but a clean success.
bool inflate_whole_member_to(std::string_view gz, char* out, size_t isize) {
    libdeflate_decompressor* d = thread_decompressor();
    if (d == nullptr) return false;
    size_t in_used = 0, out_used = 0;
    const libdeflate_result rc =
        libdeflate_gzip_decompress_ex(d, gz.data(), gz.size(), out, isize, &in_used, &out_used);
    return rc == LIBDEFLATE_SUCCESS && in_used == gz.size() && out_used == isize;
}

std::optional<std::string> inflate_whole_member(std::string_view gz, uint64_t max_output) {
    const std::optional<size_t> isize = whole_member_size(gz, max_output);
    if (!isize) return std::nullopt;
    std::string out(*isize, '\0');
    if (!inflate_whole_member_to(gz, out.data(), *isize)) return std::nullopt;
    return out;
}

}  // namespace

bool has_gzip_magic(std::string_view bytes) {
    return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
           static_cast<uint8_t>(bytes[1]) == 0x8b;
}

bool gzip_inflate_padded(std::string_view gz, uint64_t max_output, PaddedText& out) {
    const std::optional<size_t> isize = whole_member_size(gz, max_output);
    if (!isize) return false;
    if (!inflate_whole_member_to(gz, out.prepare(*isize), *isize)) return false;
    out.finish(*isize);
    return true;
}

DecodeResult<std::string> gzip_inflate(std::string_view gz, uint64_t max_output) {
    if (auto whole = inflate_whole_member(gz, max_output)) return std::move(*whole);
    z_stream zs{};
    if (inflateInit2(&zs, kGzipWindowBits) != Z_OK)
        return DecodeError{500, "internal_error", "inflate init failed"};
    struct Guard {
        z_stream* zs;
        ~Guard() { inflateEnd(zs); }
    } guard{&zs};

    // Memory policy: reserve a guess (JSON compresses ~5-10x); if the output outgrows it, move once into
    // a buffer reserved at exactly the cap. std::string's own growth doubles and could overshoot the cap
    // by up to 2x; a fresh reserve allocates exactly, and untouched pages of a large allocation are never
    // resident, so a bomb's resident cost is what it managed to write, at most the cap.
    const uint64_t hard_capacity = max_output + 1;
    std::string out;
    out.reserve(
        static_cast<size_t>(std::min<uint64_t>(hard_capacity, std::max<uint64_t>(kMinRoom, gz.size() * 8))));
    size_t in_pos = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (zs.avail_in == 0 && in_pos < gz.size()) {
            const size_t feed = std::min(gz.size() - in_pos, kMaxFeed);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + in_pos));
            zs.avail_in = static_cast<uInt>(feed);
            in_pos += feed;
        }
        // Room for this round: one chunk, or whatever is left under the cap plus one byte so that reaching
        // the cap exactly is told apart from exceeding it.
        const uint64_t room_under_cap = hard_capacity - out.size();
        size_t room = static_cast<size_t>(std::min<uint64_t>(kChunk, room_under_cap));
        const size_t before = out.size();
        // Fill the spare capacity first (resize zero-fills `room` bytes, so it must not exceed need).
        const size_t spare = out.capacity() - before;
        if (room > spare && spare >= kMinRoom) room = spare;
        if (before + room > out.capacity()) {
            std::string larger;
            larger.reserve(static_cast<size_t>(hard_capacity));
            larger.append(out);
            out.swap(larger);
        }
        out.resize(before + room);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + before);
        zs.avail_out = static_cast<uInt>(room);
        rc = inflate(&zs, Z_NO_FLUSH);
        out.resize(before + (room - zs.avail_out));
        if (out.size() > max_output) return too_large("decompressed payload exceeds the limit");
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos >= gz.size()) {
            return undecodable("truncated gzip data");
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) return undecodable("invalid gzip data");
    }
    if (zs.avail_in != 0 || in_pos < gz.size()) return undecodable("trailing bytes after gzip data");
    return out;
}

std::string gzip_deflate(std::string_view bytes, int level) {
    z_stream zs{};
    deflateInit2(&zs, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 32);
    size_t in_pos = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (zs.avail_in == 0 && in_pos < bytes.size()) {
            const size_t feed = std::min(bytes.size() - in_pos, kMaxFeed);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + in_pos));
            zs.avail_in = static_cast<uInt>(feed);
            in_pos += feed;
        }
        if (zs.total_out == out.size()) out.resize(out.size() * 2);
        const size_t room = std::min(out.size() - zs.total_out, kMaxFeed);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
        zs.avail_out = static_cast<uInt>(room);
        rc = deflate(&zs, in_pos < bytes.size() || zs.avail_in != 0 ? Z_NO_FLUSH : Z_FINISH);
    }
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

}  // namespace edgeguard::privacy
