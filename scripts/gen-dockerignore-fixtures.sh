#!/usr/bin/env bash
# Regenerates the expected outputs of the `.dockerignore` fixtures from the real docker CLI.
#
# Each tests/fixtures/dockerignore/*.json holds one case. Its inputs are written by hand:
#   "about"        what the case shows
#   "dockerfile"   the -f path, relative to the context root
#   "tree"         context entries: "dir/" for directories, "name -> target" for symlinks,
#                  anything else is a regular file (contents do not matter)
#   "dockerignore" the exact .dockerignore bytes (a JSON string), or null for no file
# This script fills in its outputs, observed from the docker CLI's classic builder path:
#   "sent"         every entry of the tar the CLI sent to the daemon, dirs with a trailing "/"
#                  (null if the CLI failed before sending)
#   "copied"       what `COPY . /ctx/` then put in the image: the daemon itself drops
#                  the Dockerfile and .dockerignore when .dockerignore excludes them
#   "error"        the CLI's error message when the build failed, else null
#   "cli"          the docker CLI version that produced the outputs
#
# How: the CLI talks to dockerd through a small recording proxy on a private unix socket, so
# the build request's body (the context tar) is captured byte for byte; the image then lists
# /ctx into /list.txt and `docker run` prints it.
#
# Usage (needs python3, a running dockerd and the docker CLI; takes a few minutes):
#   scripts/gen-dockerignore-fixtures.sh                # all cases
#   scripts/gen-dockerignore-fixtures.sh NAME.json ...  # some cases
#   DOCKER=/usr/bin/docker scripts/gen-dockerignore-fixtures.sh   # another CLI
# Images are tagged dbuild-ignore-fixture:* and removed afterwards. The base image
# localbusybox:latest is made from the host's static busybox if it is missing.
set -euo pipefail

# Case paths are taken relative to the caller's directory, before moving to the repository.
cases=()
for arg in "$@"; do
    cases+=("$(realpath "$arg")")
done
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-/usr/local/bin/docker}
export DOCKER

if ! "$DOCKER" image inspect localbusybox:latest >/dev/null 2>&1; then
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin"
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
    for applet in $("$rootfs/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    tar -C "$rootfs" -c . | "$DOCKER" import - localbusybox:latest >/dev/null
    rm -rf "$rootfs"
fi

if [ ${#cases[@]} -eq 0 ]; then
    cases=(tests/fixtures/dockerignore/*.json)
fi

exec python3 - "${cases[@]}" <<'PY'
import io, json, os, shutil, socket, subprocess, sys, tarfile, tempfile, threading

DOCKER = os.environ["DOCKER"]
UPSTREAM = "/var/run/docker.sock"
DOCKERFILE = """FROM localbusybox:latest
COPY . /ctx/
RUN cd /ctx && { find . -mindepth 1 -type d | sed 's,$,/,'; find . -mindepth 1 ! -type d; } | sed 's,^[.]/,,' | sort > /list.txt
"""

captured = []  # one bytearray per client connection: what the CLI sent

def pipe(src, dst, buf):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if buf is not None:
                buf += data
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def proxy(listener):
    while True:
        client, _ = listener.accept()
        up = socket.socket(socket.AF_UNIX)
        up.connect(UPSTREAM)
        buf = bytearray()
        captured.append(buf)
        threading.Thread(target=pipe, args=(client, up, buf), daemon=True).start()
        threading.Thread(target=pipe, args=(up, client, None), daemon=True).start()

def build_body():
    """The body of the CLI's POST /build request, de-chunked."""
    for buf in captured:
        data = bytes(buf)
        start = 0
        while True:
            i = data.find(b"POST /", start)
            if i < 0:
                break
            line = data[i:data.find(b"\r\n", i)]
            start = i + 1
            if b"/build" not in line:
                continue
            end = data.index(b"\r\n\r\n", i)
            headers = data[i:end].lower()
            rest = data[end + 4:]
            if b"transfer-encoding: chunked" in headers:
                body = bytearray()
                while True:
                    nl = rest.index(b"\r\n")
                    size = int(rest[:nl].split(b";")[0], 16)
                    if size == 0:
                        return bytes(body)
                    body += rest[nl + 2:nl + 2 + size]
                    rest = rest[nl + 2 + size + 2:]
            for h in headers.split(b"\r\n"):
                if h.startswith(b"content-length:"):
                    return rest[:int(h.split(b":")[1])]
            return rest
    return None

def tar_list(body):
    out = []
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as t:
        for m in t.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            out.append(name.rstrip("/") + ("/" if m.isdir() else ""))
    return sorted(out)

def run_case(path, sock):
    with open(path, encoding="utf-8") as f:
        case = json.load(f)
    name = os.path.splitext(os.path.basename(path))[0]
    tag = "dbuild-ignore-fixture:" + name.lower()[:120]
    ctx = tempfile.mkdtemp(prefix="dbuild-ignore-")
    try:
        for e in case["tree"]:
            if " -> " in e:
                link, target = e.split(" -> ", 1)
                os.makedirs(os.path.dirname(os.path.join(ctx, link)), exist_ok=True)
                os.symlink(target, os.path.join(ctx, link))
            elif e.endswith("/"):
                os.makedirs(os.path.join(ctx, e), exist_ok=True)
            else:
                p = os.path.join(ctx, e)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(DOCKERFILE if e == case["dockerfile"] else e + "\n")
        if case["dockerignore"] is not None:
            with open(os.path.join(ctx, ".dockerignore"), "wb") as f:
                f.write(case["dockerignore"].encode("utf-8"))
        captured.clear()
        env = dict(os.environ, DOCKER_BUILDKIT="0", DOCKER_HOST="unix://" + sock)
        r = subprocess.run([DOCKER, "build", "--no-cache", "--rm", "-q", "--network", "none", "-t", tag,
                            "-f", os.path.join(ctx, case["dockerfile"]), ctx],
                           env=env, capture_output=True, text=True)
        body = build_body()
        case["sent"] = tar_list(body) if body is not None else None
        case["copied"] = None
        case["error"] = None
        if r.returncode != 0:
            lines = [l for l in r.stderr.splitlines() if l.strip() and "DEPRECATED" not in l
                     and "legacy builder" not in l and "BuildKit" not in l
                     and "docs.docker.com" not in l]
            case["error"] = lines[-1] if lines else "exit %d" % r.returncode
        else:
            r = subprocess.run([DOCKER, "run", "--rm", "--network", "none", tag, "cat", "/list.txt"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("%s: docker run failed: %s" % (name, r.stderr.strip()))
            case["copied"] = sorted(l for l in r.stdout.split("\n") if l)
        case["cli"] = subprocess.run([DOCKER, "version", "-f", "{{.Client.Version}}"],
                                     capture_output=True, text=True).stdout.strip()
        with open(path, "w", encoding="utf-8") as f:
            json.dump(case, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print("%-45s %s" % (name, case["error"] or "%d sent" % len(case["sent"])), flush=True)
    finally:
        subprocess.run([DOCKER, "rmi", "-f", tag], capture_output=True)
        shutil.rmtree(ctx, ignore_errors=True)

tmp = tempfile.mkdtemp(prefix="dbuild-ignore-proxy-")
sock = os.path.join(tmp, "docker.sock")
listener = socket.socket(socket.AF_UNIX)
listener.bind(sock)
listener.listen(16)
threading.Thread(target=proxy, args=(listener,), daemon=True).start()
try:
    for p in sys.argv[1:]:
        run_case(p, sock)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
PY
