#!/usr/bin/env python3
"""Smart-HTTP git server for the dbuild test bed (Python 3 standard library only).

Runs `git http-backend` as a CGI program for every request:

    /NAME.git/...          anonymous, read only
    /private/NAME.git/...  HTTP basic auth required (user and password from the
                           environment: DBUILD_GIT_HTTP_USER, DBUILD_GIT_HTTP_PASSWORD)

Both prefixes serve the same repositories (those under --root). Request bodies
may be sent with Content-Length or chunked; responses are HTTP/1.1, chunked
unless the backend gives a Content-Length, and keep-alive works.

Started and stopped by scripts/testbed.sh; not meant to face anything but
127.0.0.1.
"""

import argparse
import base64
import hmac
import http.server
import os
import shutil
import subprocess
import sys
import tempfile

PRIVATE = "/private"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dbuild-testbed-git-http/1"

    # Set on the class by main().
    root = ""
    user = ""
    password = ""

    def do_GET(self):
        self.handle_git()

    def do_POST(self):
        self.handle_git()

    def do_HEAD(self):
        self.handle_git()

    # --- helpers -----------------------------------------------------------
    def read_body(self, out):
        """Copy the request body to the file `out`; return its length."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        total = 0
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 65536))
                    if not data:
                        raise ValueError("truncated chunk")
                    out.write(data)
                    remaining -= len(data)
                total += size
                self.rfile.readline(3)  # CRLF after the chunk
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, 65536))
                if not data:
                    raise ValueError("truncated body")
                out.write(data)
                remaining -= len(data)
                total += len(data)
        out.flush()
        out.seek(0)
        return total

    def send_simple(self, code, text, extra=()):
        body = (text + "\n").encode()
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authorized(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if hmac.compare_digest(user, self.user) and hmac.compare_digest(password, self.password):
            return user
        return None

    # --- the CGI bridge ----------------------------------------------------
    def handle_git(self):
        path, _, query = self.path.partition("?")
        remote_user = ""
        if path == PRIVATE or path.startswith(PRIVATE + "/"):
            remote_user = self.authorized()
            if not remote_user:
                # Drain the body so the connection can be reused.
                with tempfile.TemporaryFile() as sink:
                    try:
                        self.read_body(sink)
                    except ValueError:
                        self.close_connection = True
                self.send_simple(401, "authentication required",
                                 [("WWW-Authenticate", 'Basic realm="dbuild-testbed"')])
                return
            path = path[len(PRIVATE):] or "/"

        with tempfile.TemporaryFile() as body:
            try:
                length = self.read_body(body)
            except ValueError as e:
                self.close_connection = True
                self.send_simple(400, "bad request body: %s" % e)
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": self.root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": self.server_version,
                "SERVER_NAME": self.server.server_address[0],
                "SERVER_PORT": str(self.server.server_address[1]),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_LENGTH": str(length),
            }
            if remote_user:
                env["REMOTE_USER"] = remote_user
                env["AUTH_TYPE"] = "Basic"
            if self.headers.get("Content-Type"):
                env["CONTENT_TYPE"] = self.headers["Content-Type"]
            for key, value in self.headers.items():
                k = key.upper().replace("-", "_")
                if k in ("CONTENT_TYPE", "CONTENT_LENGTH", "AUTHORIZATION", "TRANSFER_ENCODING"):
                    continue
                # e.g. HTTP_GIT_PROTOCOL (protocol v2), HTTP_CONTENT_ENCODING (gzip)
                env["HTTP_" + k] = value

            proc = subprocess.Popen(["git", "http-backend"], stdin=body, stdout=subprocess.PIPE,
                                    env=env)
            try:
                self.relay(proc)
            finally:
                proc.stdout.close()
                proc.wait()

    def relay(self, proc):
        status = 200
        reason = None
        headers = []
        content_length = None
        while True:
            line = proc.stdout.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            value = value.strip()
            if name.lower() == "status":
                code, _, reason = value.partition(" ")
                status = int(code)
            elif name.lower() == "content-length":
                content_length = value
            else:
                headers.append((name, value))
        self.send_response(status, reason or None)
        for k, v in headers:
            self.send_header(k, v)
        chunked = content_length is None and self.command != "HEAD"
        if content_length is not None:
            self.send_header("Content-Length", content_length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        if not chunked:
            shutil.copyfileobj(proc.stdout, self.wfile)
            return
        while True:
            data = proc.stdout.read1(65536)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8418)
    ap.add_argument("--root", required=True, help="directory holding the NAME.git repositories")
    args = ap.parse_args()
    Handler.root = os.path.abspath(args.root)
    Handler.user = os.environ.get("DBUILD_GIT_HTTP_USER", "alice")
    Handler.password = os.environ.get("DBUILD_GIT_HTTP_PASSWORD", "")
    if not Handler.password:
        sys.exit("DBUILD_GIT_HTTP_PASSWORD must be set")
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer((args.listen, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write("git http: serving %s on http://%s:%d\n" % (Handler.root, args.listen, args.port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
