# edgeguard container image: a drop-in for the Caddy `proxy` service of PostHog's hobby stack.
#
#   docker build -t edgeguard:local .
#
# Stages: `build` compiles the Release binary users run, with the Debian -dev packages (`scripts/setup.sh --build`,
# the build half of the list CI uses; CI runs the tests on the same sources); `runtime-libs` is the slim base with
# the shared libraries that binary links; `smoke-stub` is a throwaway upstream used by tests/docker/smoke.sh; the
# last stage is the runtime image.
# Layers are ordered so that a source change rebuilds only the compile step and what follows it: the package
# layers depend on scripts/setup.sh and this file alone.
# Offline builders: make the base images locally (see docs/deploy-posthog.md, "Offline builders") and pass
# --build-arg BASE_IMAGE=<tag> --build-arg RUNTIME_BASE_IMAGE=<slim tag>.
ARG BASE_IMAGE=debian:bookworm
ARG RUNTIME_BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# Only setup.sh first, so the package layer is cached across source changes. libcap2-bin: setcap, below.
COPY scripts/setup.sh /src/scripts/setup.sh
RUN /src/scripts/setup.sh --build \
 && apt-get install -y -qq --no-install-recommends libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
# Only what the compile reads, so a change to tests, docs or conf/ reuses the compiled layer.
COPY CMakeLists.txt /src/
COPY cmake/ /src/cmake/
COPY proxy/ /src/proxy/
COPY filters/ /src/filters/
WORKDIR /src
# The capability travels with the file into the runtime stage (COPY keeps security.capability), so the runtime
# image needs neither libcap2-bin nor a second copy of the binary in a setcap layer.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DEDGEGUARD_TESTS=OFF -DEDGEGUARD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" --target edgeguard \
 && install -D -m 0755 /build/edgeguard /out/edgeguard \
 && strip /out/edgeguard \
 && setcap cap_net_bind_service=+ep /out/edgeguard \
 && /out/edgeguard version

# The shared libraries the binary links (test_container_files.py checks the list against `ldd`), and curl for
# the HEALTHCHECK; no compilers, no -dev packages. ICU is linked statically with only the data edgeguard reads
# (cmake/icu_static.cmake; icupkg and genccode come with icu-devtools in the build stage).
FROM ${RUNTIME_BASE_IMAGE} AS runtime-libs
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libevent-core-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 \
      libre2-9 libsimdjson14 libyaml-cpp0.7 zlib1g libdeflate0 libhiredis0.14 libssl3 libprotobuf32 \
      libnghttp2-14 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

# A recording HTTP upstream for the container smoke test.
FROM runtime-libs AS smoke-stub
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
COPY tests/docker/stub_upstream.py /stub_upstream.py
USER nobody
CMD ["python3", "/stub_upstream.py"]

FROM runtime-libs AS runtime
COPY --from=build /out/edgeguard /usr/local/bin/edgeguard
COPY docker/entrypoint.sh /usr/local/bin/edgeguard-entrypoint
# conf/ are the defaults (PostHog's route table, the privacy rules); mount a directory over /etc/edgeguard to
# override them. secrets/ is writable so the privacy hash key can be created on first start when
# EDGEGUARD_HASH_KEY is not set.
COPY conf/ /etc/edgeguard/
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin edgeguard \
 && mkdir -p /etc/edgeguard/secrets && chown edgeguard:edgeguard /etc/edgeguard/secrets && chmod 0700 /etc/edgeguard/secrets \
 && if ldd /usr/local/bin/edgeguard | grep 'not found'; then echo 'missing shared libraries' >&2; exit 1; fi \
 && /usr/local/bin/edgeguard version
USER edgeguard
ENV EDGEGUARD_CONFIG=/etc/edgeguard/edgeguard.yaml
EXPOSE 80 443 9180
# /readyz is 200 only with the config loaded, workers running and listeners bound, and 503 once draining.
# The admin listener stays on loopback by default, which is where Docker runs this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:9180/readyz || exit 1
# SIGTERM: stop accepting, finish in-flight requests (graceful_shutdown, default 30s), exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/edgeguard-entrypoint"]
CMD ["serve"]
