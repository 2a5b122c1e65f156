"""A small OpenAI-compatible HTTP server for tests and benchmarks (standard library only).

Serves `POST /v1/chat/completions` and `GET /v1/models` on 127.0.0.1 from a thread pool, so the
real `openai` client can be driven end to end. Answers come from `answer(model, prompt) -> str`;
faults are scripted per prompt: `faults["anger"] = ["429", "500", "slow:2"]` makes the next three
requests whose prompt mentions "anger" fail with 429, then 500, then answer after 2 s. Answers that
are not OpenAI JSON: "garbage" (status 200, a body that is not JSON), "html" (status 200, an HTML
page), "nochoices" (a completion with an empty `choices` list), "nocontent" (a null message content),
"notcompletion" (valid JSON of another shape).

    with FakeLLMServer(latency=1.0) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

DEFAULT_MODELS = ("fake-llm",)
_BAD_BODIES = {  # fault name -> (content type, body) answered with status 200
    "garbage": ("application/json", b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "tru'),
    "html": ("text/html; charset=utf-8",
             b"<!DOCTYPE html><html><head><title>Login</title></head><body><h1>Please sign in</h1></body></html>"),
    "notcompletion": ("application/json", b'{"status": "ok", "result": "Raised eyebrows"}'),
}


def default_answer(model: str, prompt: str) -> str:
    """A plain numbered list, the same for every prompt."""
    return "1. Raised eyebrows\n2. Widened eyes\n3. Open mouth\n4. Tense lips\n"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops bursts of connects (1 s SYN retry)

    def handle_error(self, request, client_address) -> None:
        # Clients that give up (timeouts, cancelled requests) reset their sockets: not an error here.
        return


class FakeLLMServer:
    """Threaded fake endpoint. `url` ends in /v1; `requests` records every chat request body."""

    def __init__(
        self,
        answer: Callable[[str, str], str] = default_answer,
        models: tuple[str, ...] = DEFAULT_MODELS,
        api_key: str | None = "sk-test",
        latency: float = 0.0,
    ) -> None:
        self.answer = answer
        self.models = tuple(models)
        self.api_key = api_key  # None: accept any key
        self.latency = latency
        self.faults: dict[str, list[str]] = {}
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeLLMServer":
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def take_fault(self, prompt: str) -> str | None:
        """Pop the next scripted fault whose key occurs in the prompt (thread-safe)."""
        with self._lock:
            for key, queue in self.faults.items():
                if key in prompt and queue:
                    return queue.pop(0)
        return None

    def record(self, body: dict, delta: int) -> None:
        with self._lock:
            if delta > 0:
                self.requests.append(body)
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.owner.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "body is not JSON", "invalid_request_error")
            return
        self.owner.record(body, +1)
        try:
            self._complete(body)
        finally:
            self.owner.record(body, -1)

    def _complete(self, body: dict) -> None:
        model = str(body.get("model", ""))
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        if model not in self.owner.models:
            self._error(404, f"The model `{model}` does not exist", "model_not_found")
            return
        fault = self.owner.take_fault(prompt)
        if fault == "429":
            self._error(429, "Rate limit reached, slow down", "rate_limit_exceeded", {"retry-after-ms": "50"})
            return
        if fault == "500":
            self._error(500, "The server had an error processing your request", "server_error")
            return
        if fault in _BAD_BODIES:
            self._send_raw(200, *_BAD_BODIES[fault])
            return
        delay = self.owner.latency
        if fault and fault.startswith("slow:"):
            delay = float(fault.split(":", 1)[1])
        if delay:
            time.sleep(delay)
        content = None if fault == "nocontent" else self.owner.answer(model, prompt)
        self._send(200, {
            "id": f"chatcmpl-fake-{len(self.owner.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [] if fault == "nochoices" else [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len((content or "").split()),
                      "total_tokens": len(prompt.split()) + len((content or "").split())},
        })

    def _authorised(self) -> bool:
        expected = self.owner.api_key
        if expected is None or self.headers.get("Authorization") == f"Bearer {expected}":
            return True
        self._error(401, "Incorrect API key provided", "invalid_api_key")
        return False

    def _error(self, status: int, message: str, code: str, headers: dict | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": code, "param": None, "code": code}}, headers)

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(status, "application/json", json.dumps(payload).encode("utf-8"), headers)

    def _send_raw(self, status: int, content_type: str, data: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer
