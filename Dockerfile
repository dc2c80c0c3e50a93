# edgeguard container image: a drop-in for the Caddy `proxy` service of PostHog's hobby stack.
#
#   docker build -t edgeguard:local .
#
# Stages: `build` compiles with the Debian -dev packages (scripts/setup.sh, the same list CI uses) and runs the
# unit tests, so an image never ships a binary whose tests fail; `smoke-stub` is a throwaway upstream used by
# tests/docker/smoke.sh; the last stage is the runtime image with only the shared libraries.
# Offline builders: make the base image locally (see docs/deploy-posthog.md, "Offline builders") and pass
# --build-arg BASE_IMAGE=<that tag>.
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# Only setup.sh first, so the package layer is cached across source changes.
COPY scripts/setup.sh /src/scripts/setup.sh
RUN /src/scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEGUARD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cd /build && ctest -R '^unit\.' --output-on-failure -j"$(nproc)" --timeout 300 \
 && install -D -m 0755 /build/edgeguard /out/edgeguard \
 && strip --strip-debug /out/edgeguard

# A recording HTTP upstream for the container smoke test (python3 is already in the build stage).
FROM build AS smoke-stub
COPY tests/docker/stub_upstream.py /stub_upstream.py
USER nobody
CMD ["python3", "/stub_upstream.py"]

FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Runtime libraries only (no compilers, no -dev packages). curl serves the HEALTHCHECK; libcap2-bin gives
# setcap and is removed again in the same layer.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libevent-core-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 \
      libre2-9 libsimdjson14 libyaml-cpp0.7 zlib1g libdeflate0 libhiredis0.14 libssl3 libicu72 ca-certificates curl \
      libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/edgeguard /usr/local/bin/edgeguard
COPY docker/entrypoint.sh /usr/local/bin/edgeguard-entrypoint
# conf/ are the defaults (PostHog's route table, the privacy rules); mount a directory over /etc/edgeguard to
# override them. secrets/ is writable so the privacy hash key can be created on first start when
# EDGEGUARD_HASH_KEY is not set.
COPY conf/ /etc/edgeguard/
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin edgeguard \
 && mkdir -p /etc/edgeguard/secrets && chown edgeguard:edgeguard /etc/edgeguard/secrets && chmod 0700 /etc/edgeguard/secrets \
 && setcap cap_net_bind_service=+ep /usr/local/bin/edgeguard \
 && apt-get purge -y -qq libcap2-bin && apt-get autoremove -y -qq \
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
