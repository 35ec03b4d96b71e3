# kc-cluster-hub container images, all on Debian 12 slim:
#   build          compiles with CMake and runs the unit tests; an image is only made when they pass
#   demo-instance  kc-cluster-ctl with openssl, curl and jq, for the demo instances and the
#                  certificate service of deploy/docker-compose.yml
#   hub            the service, run as a non-root user (the default target, so it comes last)
# tests/deploy/dockerfile_steps.sh runs the RUN steps of these stages in a fresh Debian 12 root.
FROM debian:12-slim AS build
# python3 and openssl are for the unit tests: the realm key tests serve keys with python3's
# http.server over a certificate that openssl makes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
        libmicrohttpd-dev libhiredis-dev libssl-dev libjansson-dev libcurl4-openssl-dev \
        python3 openssl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY service ./service
COPY tests/unit ./tests/unit
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKCHUB_WERROR=ON \
    && cmake --build build -j"$(nproc)" \
    && ctest --test-dir build --output-on-failure --timeout 120 \
    && cmake --install build --prefix /opt/kc-cluster-hub

FROM debian:12-slim AS demo-instance
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libssl3 libjansson4 libcurl4 \
        ca-certificates openssl curl jq \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10003 --no-create-home --shell /usr/sbin/nologin kcdemo
COPY --from=build /opt/kc-cluster-hub/bin/kc-cluster-ctl /usr/local/bin/
COPY deploy/demo/instance.sh deploy/demo/make-secrets.sh /usr/local/bin/
COPY deploy/redis/users.acl /usr/local/share/kc-demo/users.acl
USER 10003:10003
ENTRYPOINT ["/usr/local/bin/instance.sh"]

FROM debian:12-slim AS hub
# curl is for the HEALTHCHECK: the hub already needs libcurl4, so the curl binary adds little.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmicrohttpd12 libhiredis0.14 libssl3 \
        libjansson4 libcurl4 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kchub
COPY --from=build /opt/kc-cluster-hub/bin/ /usr/local/bin/
USER 10001:10001
# Every setting comes from the environment: KCHUB_NAMESPACE is required, and
# 'kc-cluster-hub --help' lists the rest. Inside a container both listeners bind every address,
# and the admin port (health, readiness, metrics) is published only where it is wanted.
ENV KCHUB_LISTEN=0.0.0.0:8080 \
    KCHUB_ADMIN_LISTEN=0.0.0.0:8081
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl --fail --silent --show-error --max-time 2 --output /dev/null \
        "http://127.0.0.1:${KCHUB_ADMIN_LISTEN##*:}/healthz" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kc-cluster-hub"]
