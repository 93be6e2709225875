# The StatusMonitor server in a container. Build from the repository root:
#   docker build -t statusmonitor .
#   docker run -d -p 8420:8420 -v statusmonitor:/var/lib/statusmonitor statusmonitor
# Everything the server keeps is in the volume; back it up with
#   docker exec <container> statusmonitor backup --to /var/lib/statusmonitor/backup.tar.zst
# (then copy that file out and delete it), or stop the container and copy the volume.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# `make build` adds the wasm target, installs the wasm-bindgen CLI matching
# Cargo.lock, builds the dashboard bundle and the release binaries.
ARG STATUSMONITOR_GIT_REVISION=unknown
ENV STATUSMONITOR_GIT_REVISION=${STATUSMONITOR_GIT_REVISION}
RUN make build

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/statusmonitor statusmonitor \
 && install -d -o statusmonitor -g statusmonitor -m 0700 /var/lib/statusmonitor
COPY --from=build /src/target/release/statusmonitor /usr/local/bin/statusmonitor
USER statusmonitor
ENV STATUSMONITOR_DATA_DIR=/var/lib/statusmonitor \
    STATUSMONITOR_LISTEN=0.0.0.0:8420
VOLUME ["/var/lib/statusmonitor"]
EXPOSE 8420
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/statusmonitor"]
CMD ["serve"]
