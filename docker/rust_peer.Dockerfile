# rust_peer on foca 1.0, built in a container from the local base image.
#
# Build with docker/build-images.sh, which first makes the base image and
# docker/.deps/rust-vendor.tar.gz (the crates of rust_peer/Cargo.lock, fetched
# on the host with `cargo vendor`). The context is the repository root.
# Written for the legacy builder (no BuildKit here), so it uses no RUN --mount
# or heredocs: caching comes from layer order alone.

ARG BASE_IMAGE=swim-base:trixie

FROM ${BASE_IMAGE} AS build
# Debian trixie ships rustc and cargo 1.85, above foca's minimum of 1.81 and
# the 1.85 that clap 4.6, prost 0.14 and tokio 1.54 in Cargo.lock require.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cargo rustc \
    && rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo CARGO_TERM_COLOR=never
COPY docker/cargo-vendored.toml /usr/local/cargo/config.toml
COPY docker/.deps/rust-vendor.tar.gz /tmp/rust-vendor.tar.gz
RUN mkdir /vendor \
    && tar -xzf /tmp/rust-vendor.tar.gz -C /vendor \
    && rm /tmp/rust-vendor.tar.gz

# Dependency layer: compile every crate and run build.rs (which compiles
# proto/swim.proto) against a stub main.rs, so a change under rust_peer/src
# rebuilds only the rust_peer crate itself.
COPY proto/ /src/proto/
COPY rust_peer/Cargo.toml rust_peer/Cargo.lock rust_peer/build.rs /src/rust_peer/
WORKDIR /src/rust_peer
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY rust_peer/src/ src/
# COPY keeps the files' own modification times, which can be older than the
# stub build above, so touch main.rs to make cargo rebuild the binary.
RUN touch src/main.rs \
    && cargo build --release --locked \
    && ./target/release/rust_peer --help >/dev/null

FROM ${BASE_IMAGE}
COPY --from=build /src/rust_peer/target/release/rust_peer /usr/local/bin/rust_peer
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/rust_peer"]
