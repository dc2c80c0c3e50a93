// Load tool for bench/tcp_compare.py: `sink PORT` accepts connections and discards what they send (one thread
// each); `send PORT CONNECTIONS SECONDS WRITE_BYTES` opens CONNECTIONS connections to 127.0.0.1:PORT and
// writes WRITE_BYTES at a time on each for SECONDS, then prints the bytes written and the seconds taken.
// Blocking sockets and one thread per connection: the proxy in the middle, not this tool, should be the
// bottleneck.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int sink(uint16_t port) {
    const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(ls, 1024) != 0) {
        std::perror("sink: listen");
        return 1;
    }
    for (;;) {
        const int fd = ::accept(ls, nullptr, nullptr);
        if (fd < 0) continue;
        std::thread([fd] {
            std::vector<char> buf(256 * 1024);
            while (::read(fd, buf.data(), buf.size()) > 0) {
            }
            ::close(fd);
        }).detach();
    }
}

int send_load(uint16_t port, int connections, double seconds, size_t write_bytes) {
    std::atomic<uint64_t> total{0};
    std::atomic<int> failures{0};
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    for (int i = 0; i < connections; ++i) {
        threads.emplace_back([&] {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(port);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
                failures.fetch_add(1);
                ::close(fd);
                return;
            }
            std::vector<char> buf(write_bytes, 'x');
            uint64_t sent = 0;
            while (std::chrono::steady_clock::now() < until) {
                const ssize_t n = ::write(fd, buf.data(), buf.size());
                if (n <= 0) {
                    failures.fetch_add(1);
                    break;
                }
                sent += static_cast<uint64_t>(n);
            }
            total.fetch_add(sent);
            ::close(fd);
        });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"bytes\": %llu, \"seconds\": %.6f, \"failures\": %d}\n",
                static_cast<unsigned long long>(total.load()), elapsed, failures.load());
    return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "sink") == 0)
        return sink(static_cast<uint16_t>(std::atoi(argv[2])));
    if (argc == 6 && std::strcmp(argv[1], "send") == 0)
        return send_load(static_cast<uint16_t>(std::atoi(argv[2])), std::atoi(argv[3]), std::atof(argv[4]),
                         static_cast<size_t>(std::atol(argv[5])));
    std::fprintf(stderr, "usage: tcp_blast sink PORT | send PORT CONNECTIONS SECONDS WRITE_BYTES\n");
    return 2;
}
