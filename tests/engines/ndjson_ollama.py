"""A tiny Ollama for the engine tests: /api/version and a streamed /api/chat, as a process.

Run as `python ndjson_ollama.py PORT_FILE`; it writes its port there. The model "writer"
answers in three chunks; "broken" fails mid-stream with an error line under HTTP 200;
any other model is 404 with Ollama's words. The shapes follow ollama/ollama's
docs/api.md and server/routes.go.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNKS = ["A fox ", "runs through ", "snow, tracking shot."]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/version":
            self.reply(200, {"version": "0.12.3"})
        else:
            self.reply(404, b"404 page not found", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body.get("model")
        if model not in ("writer", "broken"):
            self.reply(404, {"error": f"model '{model}' not found"})
            return
        lines = [
            {"model": model, "message": {"role": "assistant", "content": c}, "done": False}
            for c in CHUNKS
        ]
        if model == "broken":
            lines = lines[:1] + [{"error": "an error was encountered while running the model"}]
        else:
            lines.append(
                {
                    "model": model,
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "eval_count": 9,
                }
            )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for line in lines:
            self.wfile.write(json.dumps(line).encode() + b"\n")
            self.wfile.flush()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(sys.argv[1]).write_text(str(server.server_address[1]))
    server.serve_forever()
