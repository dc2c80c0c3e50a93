// CIDR membership: the allowlist check every accepted connection (or request) pays.
#include <benchmark/benchmark.h>

#include "proxy/access/cidr.h"
#include "proxy/access/client_ip.h"

namespace edgeguard {
namespace {

CidrSet set_of(std::initializer_list<const char*> list) {
    CidrSet s;
    for (const char* c : list) s.add(*Cidr::parse(c));
    return s;
}

void BM_DefaultAllowlistHit(benchmark::State& state) {
    const CidrSet allow = set_of({"10.1.1.0/24", "127.0.0.0/8", "::1"});
    const IpAddress ip = *IpAddress::parse("127.0.0.1");
    for (auto _ : state) benchmark::DoNotOptimize(allow.contains(ip));
}
BENCHMARK(BM_DefaultAllowlistHit);

void BM_DefaultAllowlistMiss(benchmark::State& state) {
    const CidrSet allow = set_of({"10.1.1.0/24", "127.0.0.0/8", "::1"});
    const IpAddress ip = *IpAddress::parse("203.0.113.9");
    for (auto _ : state) benchmark::DoNotOptimize(allow.contains(ip));
}
BENCHMARK(BM_DefaultAllowlistMiss);

void BM_LargeListMiss(benchmark::State& state) {
    CidrSet allow;
    for (int i = 0; i < state.range(0); ++i) {
        allow.add(*Cidr::parse("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
    }
    const IpAddress ip = *IpAddress::parse("203.0.113.9");
    for (auto _ : state) benchmark::DoNotOptimize(allow.contains(ip));
}
BENCHMARK(BM_LargeListMiss)->Arg(16)->Arg(256)->Arg(4096);

void BM_ParseAddress(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(IpAddress::parse("2001:db8::1"));
}
BENCHMARK(BM_ParseAddress);

void BM_ResolveClientIpBehindTwoProxies(benchmark::State& state) {
    const CidrSet trusted = set_of({"10.0.0.0/8"});
    const IpAddress peer = *IpAddress::parse("10.0.0.1");
    for (auto _ : state) {
        benchmark::DoNotOptimize(resolve_client_ip(peer, "198.51.100.4, 10.0.0.3, 10.0.0.2", trusted));
    }
}
BENCHMARK(BM_ResolveClientIpBehindTwoProxies);

}  // namespace
}  // namespace edgeguard

BENCHMARK_MAIN();
