#include "proxy/pipeline/acme_challenge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace edgeguard {
namespace {

bool is_base64url_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

bool is_acme_challenge_path(std::string_view normalized_path) {
    return normalized_path.starts_with(kAcmeChallengePrefix) ||
           normalized_path == kAcmeChallengePrefix.substr(0, kAcmeChallengePrefix.size() - 1);
}

std::string_view acme_challenge_token(std::string_view normalized_path) {
    if (!normalized_path.starts_with(kAcmeChallengePrefix)) return {};
    const std::string_view token = normalized_path.substr(kAcmeChallengePrefix.size());
    if (token.empty() || token.size() > kMaxAcmeTokenLength) return {};
    if (!std::all_of(token.begin(), token.end(), is_base64url_char)) return {};
    return token;
}

AcmeChallengeFile read_acme_challenge(std::string_view webroot, std::string_view token) {
    AcmeChallengeFile out;
    out.status = 404;
    std::string path(webroot);
    if (path.empty() || path.back() != '/') path.push_back('/');
    path.append(kAcmeChallengePrefix.substr(1));
    path.append(token);
    // O_NONBLOCK: a FIFO planted in the directory must not stall the worker's event loop.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        out.reason = "no such ACME challenge";
        return out;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        out.reason = "ACME challenge is not a regular file";
        return out;
    }
    if (st.st_size > static_cast<off_t>(kMaxAcmeChallengeBytes)) {
        ::close(fd);
        out.reason = "ACME challenge file too large";
        return out;
    }
    out.body.resize(kMaxAcmeChallengeBytes + 1);
    size_t have = 0;
    for (;;) {
        const ssize_t n = ::read(fd, out.body.data() + have, out.body.size() - have);
        if (n > 0) {
            have += static_cast<size_t>(n);
            if (have == out.body.size()) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) have = out.body.size();  // unreadable: answered as absent below
        break;
    }
    ::close(fd);
    // Grown since fstat (a file being rewritten) or unreadable: not served.
    if (have > kMaxAcmeChallengeBytes) {
        out.body.clear();
        out.reason = "ACME challenge file unreadable or too large";
        return out;
    }
    out.body.resize(have);
    out.status = 200;
    return out;
}

}  // namespace edgeguard
