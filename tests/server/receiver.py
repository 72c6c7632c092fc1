"""A webhook receiver in its own process, on loopback, whose answers a test scripts.

    python receiver.py PORT DIR

Before answering, it reads ``DIR/script.json``: ``{"fail_first": N, "status": 500,
"hang": 0, "retry_after": null, "location": null}``. The first ``fail_first`` requests
get ``status`` (after sleeping ``hang`` seconds, with ``Retry-After`` and ``Location``
when given); later ones get 200. Every request is appended to ``DIR/requests.jsonl``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOCK = threading.Lock()


def main(port: int, folder: Path) -> None:
    count = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal count
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            script_path = folder / "script.json"
            script = json.loads(script_path.read_text()) if script_path.exists() else {}
            with LOCK:
                count += 1
                number = count
                with open(folder / "requests.jsonl", "a") as log:
                    entry = {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode(),
                        "at": time.time(),
                    }
                    log.write(json.dumps(entry) + "\n")
            if number <= script.get("fail_first", 0):
                time.sleep(script.get("hang", 0))
                self.send_response(script.get("status", 500))
                if script.get("retry_after") is not None:
                    self.send_header("Retry-After", str(script["retry_after"]))
                if script.get("location"):
                    self.send_header("Location", script["location"])
            else:
                self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
