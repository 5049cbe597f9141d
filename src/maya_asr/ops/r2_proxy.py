"""An R2-like front door for a local S3 server (moto), with fault injection, on 127.0.0.1 only.

Tests and benchmarks talk real HTTP with the real boto3 client to this proxy, which forwards to
``moto_server`` and adds what R2 does and moto does not:

- **Equal part sizes.** CompleteMultipartUpload is refused (400 ``InvalidPart``) unless every
  part but the last has the same size and the last is no larger (R2's rule; S3 allows any
  sizes >= 5 MiB).
- **Faults on demand**, set over HTTP at ``POST /__r2proxy__/faults`` with a JSON list of rules
  (see :class:`FaultRule`): reply with an error (5xx, ``SlowDown``), drop the connection, delay,
  kill this proxy (``die``: the endpoint dies mid-request), kill the backend (its state is lost)
  or flip the first byte of a response body (``corrupt``: bit rot on the read path).
  ``GET /__r2proxy__/stats`` returns request and fault counters.

Written by hand (stdlib ``http.server``) because it must be killable and restartable as its own
process and inject faults per request; moto alone cannot.

Run: ``python -m maya_asr.ops.r2_proxy --port 9100 --backend-port 9101 [--backend-pid PID]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CONTROL = "/__r2proxy__/"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class FaultRule:
    """One injected fault: fires on matching requests after ``skip`` matches, ``count`` times."""

    action: str  # "error" | "reset" | "delay" | "die" | "kill_backend" | "corrupt"
    method: str = ""  # match this HTTP method ("" = any)
    query: str = ""  # match when this query parameter is present, e.g. "partNumber"
    bare: bool = False  # match only requests without a query string (plain object reads)
    skip: int = 0  # let this many matching requests through first
    count: int = 1  # then fire this many times
    status: int = 503  # for "error": HTTP status
    code: str = "ServiceUnavailable"  # for "error": S3 error code, e.g. "SlowDown"
    delay_s: float = 0.0  # for "delay": seconds before forwarding

    def __post_init__(self):
        if self.action not in ("error", "reset", "delay", "die", "kill_backend", "corrupt"):
            raise ValueError(f"unknown fault action {self.action!r}")

    def matches(self, method: str, query: dict) -> bool:
        return (
            (not self.method or self.method == method)
            and (not self.query or self.query in query)
            and (not self.bare or not query)
        )


class ProxyState:
    """Backend address, fault rules and counters, shared by the handler threads."""

    def __init__(self, backend_port: int, backend_pid: int | None):
        self.backend_port = backend_port
        self.backend_pid = backend_pid
        self.rules: list[FaultRule] = []
        self.stats: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] = self.stats.get(name, 0) + 1

    def take_fault(self, method: str, query: dict) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.count <= 0 or not rule.matches(method, query):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                rule.count -= 1
                self.stats[f"fault:{rule.action}"] = self.stats.get(f"fault:{rule.action}", 0) + 1
                return rule
        return None


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


def check_part_sizes(sizes: list[int]) -> str | None:
    """R2's rule for the sizes of the parts of one upload, in part order; None when fine."""
    if len(sizes) > 1:
        first = sizes[0]
        if any(s != first for s in sizes[:-1]) or sizes[-1] > first:
            return "All non-trailing parts must have the same length."
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "r2proxy"
    state: ProxyState  # set on the subclass made by serve()

    def log_message(self, format, *args):  # quiet: tests read stats, not access logs
        pass

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "application/xml"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _backend(self, method: str, path: str, body: bytes, headers: dict):
        conn = http.client.HTTPConnection("127.0.0.1", self.state.backend_port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def _control(self, body: bytes) -> None:
        name = urlsplit(self.path).path[len(CONTROL) :]
        if name == "faults" and self.command == "POST":
            rules = [FaultRule(**r) for r in json.loads(body or b"[]")]
            with self.state.lock:
                self.state.rules = rules
            self._reply(200, b"{}", {"Content-Type": "application/json"})
        elif name == "faults":
            with self.state.lock:
                data = json.dumps([asdict(r) for r in self.state.rules]).encode()
            self._reply(200, data, {"Content-Type": "application/json"})
        elif name == "stats":
            with self.state.lock:
                data = json.dumps(self.state.stats).encode()
            self._reply(200, data, {"Content-Type": "application/json"})
        elif name == "backend" and self.command == "POST":
            conf = json.loads(body)
            self.state.backend_port = int(conf["port"])
            self.state.backend_pid = conf.get("pid")
            self._reply(200, b"{}", {"Content-Type": "application/json"})
        else:
            self._reply(404, b"unknown control endpoint", {"Content-Type": "text/plain"})

    def _complete_allowed(self, path: str, query: dict, body: bytes) -> str | None:
        """R2's equal-part-size rule, checked against the parts the backend holds."""
        wanted = [
            int(el.text)
            for el in ET.fromstring(body).iter()
            if el.tag.endswith("PartNumber") and el.text
        ]
        upload_id = query["uploadId"][0]
        bucket_key = urlsplit(path).path
        status, _, data = self._backend("GET", f"{bucket_key}?uploadId={upload_id}", b"", {})
        if status != 200:
            return None  # let the backend answer (e.g. NoSuchUpload)
        sizes = {}
        for part in ET.fromstring(data).iter():
            if part.tag.endswith("}Part") or part.tag == "Part":
                fields = {child.tag.split("}")[-1]: child.text for child in part}
                sizes[int(fields["PartNumber"])] = int(fields["Size"])
        return check_part_sizes([sizes.get(n, 0) for n in sorted(wanted)])

    def _handle(self) -> None:
        body = self._body()
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL):
            self._control(body)
            return
        query = parse_qs(split.query, keep_blank_values=True)
        op = f"{self.command} {'part' if 'partNumber' in query else ''}".strip()
        self.state.count(op)
        rule = self.state.take_fault(self.command, query)
        if rule is not None:
            if rule.action == "error":
                self._reply(rule.status, _s3_error(rule.code, "injected by r2_proxy"))
                return
            if rule.action == "reset":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if rule.action == "delay":
                time.sleep(rule.delay_s)
            if rule.action == "die":
                os._exit(17)  # the endpoint vanishes mid-request, like a crashed server
            if rule.action == "kill_backend" and self.state.backend_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(self.state.backend_pid), signal.SIGKILL)
        if self.command == "POST" and "uploadId" in query:
            problem = self._complete_allowed(self.path, query, body)
            if problem:
                self.state.count("rejected:unequal_parts")
                self._reply(400, _s3_error("InvalidPart", problem))
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            status, resp_headers, data = self._backend(self.command, self.path, body, headers)
        except OSError:
            self.state.count("backend_down")
            self._reply(503, _s3_error("ServiceUnavailable", "backend unreachable"))
            return
        out = {k: v for k, v in resp_headers if k.lower() not in HOP_HEADERS | {"content-length"}}
        self.send_response(status)
        for name, value in out.items():
            self.send_header(name, value)
        if self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in resp_headers).get("content-length", "0")
            self.send_header("Content-Length", length)
            self.end_headers()
        else:
            if rule is not None and rule.action == "corrupt" and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def serve(port: int, backend_port: int, backend_pid: int | None = None) -> ThreadingHTTPServer:
    """A proxy server bound to 127.0.0.1:``port`` (not yet serving)."""
    handler = type("BoundHandler", (Handler,), {"state": ProxyState(backend_port, backend_pid)})
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--backend-port", type=int, required=True, help="moto_server port")
    parser.add_argument("--backend-pid", type=int, default=None, help="for kill_backend faults")
    args = parser.parse_args(argv)
    server = serve(args.port, args.backend_port, args.backend_pid)
    print(f"r2_proxy listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
