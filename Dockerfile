# kc-cluster-hub: build on Debian 12, run on Debian 12 slim as a non-root user.
FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
        libmicrohttpd-dev libhiredis-dev libssl-dev libjansson-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY service ./service
COPY tests/unit ./tests/unit
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKCHUB_WERROR=ON \
    && cmake --build build -j"$(nproc)" \
    && ctest --test-dir build --output-on-failure \
    && cmake --install build --prefix /opt/kc-cluster-hub

FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmicrohttpd12 libhiredis0.14 libssl3 \
        libjansson4 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kchub
COPY --from=build /opt/kc-cluster-hub/bin/ /usr/local/bin/
USER 10001:10001
# Every setting can come from the environment: KCHUB_NAMESPACE is required, KCHUB_REDIS_URL
# defaults to redis://127.0.0.1:6379, and kc-cluster-hub --help lists the rest.
ENV KCHUB_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kc-cluster-hub"]
