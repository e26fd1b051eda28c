"""A loopback HTTP server that answers file downloads like the Hugging Face Hub.

Point HF_ENDPOINT at `HubServer.url` and the real `huggingface_hub.hf_hub_download` downloads from it.
What huggingface-hub 2.4 asks (see huggingface_hub/file_download.py):

1. HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}  (revision URL-quoted, no redirects followed
   off-host). It needs `X-Repo-Commit` (40-hex commit), `X-Linked-Etag` or `ETag` (the blob name; for LFS
   files the sha256) and `X-Linked-Size` or `Content-Length`. If the response carried `X-Xet-Hash` plus a
   refresh route it would switch to the hf_xet protocol, so this server never sends them.
2. GET on the same URL (or the HEAD's `Location`), streaming the body into blobs/<etag>, then a
   snapshots/<commit>/<filename> symlink and refs/<revision>.

Before the first of these in a process, building the request headers (agent detection for the user
agent) may also GET {HF_ENDPOINT as seen at import}/api/agent-harnesses, cached for a day in
$HF_HOME/.agent_harnesses.json; HF_HUB_DISABLE_TELEMETRY or HF_HUB_OFFLINE skip it. A refused
connection on the HEAD is retried with backoff (about 23 s in total) before the download fails.

Errors follow the Hub: 404 with `X-Error-Code: RepoNotFound` / `RevisionNotFound` / `EntryNotFound`
(+ `X-Repo-Commit`). Anything else (e.g. /api/...) gets a 404.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str


class HubServer:
    """Serves `files[(repo_id, revision, filename)] = bytes` on 127.0.0.1 (random port)."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.corrupted: set[tuple[str, str, str]] = set()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content

    def add(self, repo_id: str, filename: str, data: bytes, revision: str = "main") -> None:
        self.files[(repo_id, revision, filename)] = data

    def corrupt(self, repo_id: str, filename: str, revision: str = "main", on: bool = True) -> None:
        """Serve the file with some bytes flipped (same size, headers describing the bytes sent)."""
        key = (repo_id, revision, filename)
        if on:
            self.corrupted.add(key)
        else:
            self.corrupted.discard(key)

    def body(self, key: tuple[str, str, str]) -> bytes:
        data = self.files[key]
        if key in self.corrupted:
            middle = len(data) // 2
            data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]
        return data

    @staticmethod
    def commit_for(repo_id: str, revision: str) -> str:
        if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
            return revision
        return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()

    # -- lifecycle

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                server._answer(self, send_body=False)

            def do_GET(self) -> None:
                server._answer(self, send_body=True)

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _answer(self, handler: BaseHTTPRequestHandler, *, send_body: bool) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests.append(Request(handler.command, path))
        repo_part, sep, rest = path.lstrip("/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        repo_id, revision, filename = unquote(repo_part), unquote(revision), unquote(filename)
        key = (repo_id, revision, filename)

        if not sep or not filename:
            self._send(handler, 404, {"X-Error-Code": "EntryNotFound"}, b"not found", send_body)
        elif not any(r == repo_id for r, _, _ in self.files):
            self._send(handler, 404, {"X-Error-Code": "RepoNotFound"}, b"repository not found", send_body)
        elif not any(r == repo_id and v == revision for r, v, _ in self.files):
            self._send(handler, 404, {"X-Error-Code": "RevisionNotFound"}, b"revision not found", send_body)
        elif key not in self.files:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.commit_for(repo_id, revision)}
            self._send(handler, 404, headers, b"entry not found", send_body)
        else:
            data = self.body(key)
            sha = hashlib.sha256(data).hexdigest()
            headers = {
                "Content-Type": "application/octet-stream",
                "X-Repo-Commit": self.commit_for(repo_id, revision),
                # An LFS file: the Hub names the blob by its sha256 in X-Linked-Etag.
                "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(data)),
                "Accept-Ranges": "bytes",
            }
            self._send(handler, 200, headers, data, send_body)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, send_body: bool
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if send_body:
            handler.wfile.write(body)
