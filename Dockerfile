# The dbuild image: the static binary and nothing else.
#
# The context is a directory holding the fully static binary as ./dbuild (musl, or static
# glibc), made by `scripts/build-image.sh`, which then has dbuild build this very file. There is
# no Rust build stage: the engine's build containers cannot reach crates.io, and a scratch image
# needs nothing but the binary. No CA bundle either: https git uses the Mozilla roots compiled
# into the binary (webpki-roots); extra CAs come from $DBUILD_GIT_CA_FILE, mounted at run time.
#
#   docker run --rm --read-only --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock IMAGE build git://127.0.0.1:9418/demo.git -t demo
FROM scratch
COPY dbuild /dbuild
ENTRYPOINT ["/dbuild"]
