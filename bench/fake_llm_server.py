"""A small OpenAI-compatible HTTP server for tests and benchmarks (standard library only).

Serves `POST /v1/chat/completions` and `GET /v1/models` on 127.0.0.1 from a thread pool, so the
real `openai` client can be driven end to end. Answers come from `answer(model, prompt) -> str`
when one is given, else from `default_answer`: the same list of features for every question
(four of them, plus one more that differs from sample to sample), and for a question about what an
expression does NOT show ("absent from" / "not shown in", as in templates/llm_negative.j2) a list
of features absent from that class's expression. Samples differ by the request's seed when it
has one, else by how often that prompt was answered at temperature > 0 (temperature 0 and no seed:
always the same answer; the first answer to a prompt is always the plain four-item list). Faults are scripted per prompt: `faults["anger"] = ["429", "500", "slow:2"]` makes the next three
requests whose prompt mentions "anger" fail with 429, then 500, then answer after 2 s. Answers that
are not OpenAI JSON: "garbage" (status 200, a body that is not JSON), "html" (status 200, an HTML
page), "nochoices" (a completion with an empty `choices` list), "nocontent" (a null message content),
"notcompletion" (valid JSON of another shape).

Messages may hold content-part lists (`text` and `image_url` parts, as vision models take them):
the prompt is their text, and the images (data URLs) are decoded and passed to `vision_answer(images)`
when one is given (it may return None for the default answer). `reject_images` (a message) answers
every request with an image 400 with that message (a server without vision); `max_body` answers a
body larger than that many bytes 413; `fail_after` answers 400 to every image request after that
many answered ones (a failure the client does not retry). Usage is reported on every answer.

    with FakeLLMServer(latency=1.0) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
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


_POSITIVE = ("Raised eyebrows", "Widened eyes", "Open mouth", "Tense lips")
_EXTRA = ("Flared nostrils", "Tightened eyelids", "Dropped jaw", "Wrinkled forehead", "Pressed lips",
          "Tilted head", "Lowered gaze")
_NEGATIVE_QUESTION = re.compile(r"\b(?:absent|not shown|not show|does not show|missing)\b", re.IGNORECASE)
_CLASS_IN_QUESTION = re.compile(r"expression of (.+?)\?")
_ABSENT = {  # class -> features its expression does not show
    "happiness": ("Furrowed brows", "Downturned mouth corners", "Tearful eyes", "Clenched jaw"),
    "sadness": ("Raised cheeks", "Wide smile", "Sparkling eyes", "Crow's feet wrinkles"),
    "neutral": ("Raised eyebrows", "Wide open mouth", "Wrinkled nose", "Clenched teeth"),
    "anger": ("Relaxed brows", "Soft smile", "Raised cheeks", "Drooping eyelids"),
    "surprise": ("Narrowed eyes", "Lowered brows", "Tightly closed lips", "Relaxed eyelids"),
    "disgust": ("Wide smile", "Relaxed nose", "Raised inner brows", "Soft gaze"),
    "fear": ("Relaxed forehead", "Smiling mouth", "Narrowed eyes", "Lowered brows"),
    "contempt": ("Symmetrical smile", "Widened eyes", "Raised inner brows", "Open mouth"),
    "anxiety": ("Relaxed brows", "Steady gaze", "Broad smile", "Loose jaw"),
    "helplessness": ("Firm jaw", "Lowered brows", "Bright smile", "Focused stare"),
    "disappointment": ("Raised cheeks", "Wide open eyes", "Upturned lip corners", "Bright gaze"),
}
_ABSENT_POOL = ("Furrowed brows", "Raised cheeks", "Wide smile", "Narrowed eyes", "Wrinkled nose",
                "Clenched jaw", "Tearful eyes", "Dropped jaw", "Relaxed forehead", "Pressed lips")


def default_answer(model: str, prompt: str, variant: int = 0) -> str:
    """A numbered list: visual features, or for a question about what an expression does not show, the
    features absent from that class's expression (a fixed list for the 11 built-in classes, a pick
    from a pool by the class name's hash for others). Variant k > 0 adds one more feature."""
    if _NEGATIVE_QUESTION.search(prompt):
        found = _CLASS_IN_QUESTION.search(prompt)
        name = found.group(1).strip().lower() if found else ""
        items = list(_ABSENT.get(name) or _pick(_ABSENT_POOL, name, 4))
        extra = [item for item in _ABSENT_POOL if item not in items]
    else:
        items, extra = list(_POSITIVE), list(_EXTRA)
    if variant > 0:
        items.append(extra[(variant - 1) % len(extra)])
    return "".join(f"{number}. {item}\n" for number, item in enumerate(items, start=1))


def _pick(pool: tuple[str, ...], key: str, count: int) -> list[str]:
    start = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % len(pool)
    return [pool[(start + 3 * i) % len(pool)] for i in range(count)]  # 3 and 10 coprime: distinct


def _message_parts(messages: list) -> tuple[str, list[bytes]]:
    """The text of chat messages (plain strings or content-part lists) and the decoded data-URL images."""
    texts: list[str] = []
    images: list[bytes] = []
    for message in messages:
        content = message.get("content", "") if isinstance(message, dict) else ""
        if not isinstance(content, list):
            texts.append(str(content))
            continue
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                images.append(base64.b64decode(url.split(",", 1)[1]) if url.startswith("data:") else url.encode())
    return "\n".join(texts), images


def _usage(prompt: str, n_images: int, content: str) -> dict:
    prompt_tokens = len(prompt.split()) + 85 * n_images  # a low-detail image counts 85 tokens at OpenAI
    completion = len(content.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


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
        answer: Callable[[str, str], str] | None = None,  # None: default_answer, varied per sample
        models: tuple[str, ...] = DEFAULT_MODELS,
        api_key: str | None = "sk-test",
        latency: float = 0.0,
        vision_answer: Callable[[list[bytes]], str | None] | None = None,
        reject_images: str | None = None,
        max_body: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.answer = answer
        self.vision_answer = vision_answer
        self.reject_images = reject_images
        self.max_body = max_body
        self.fail_after = fail_after
        self.image_answers = 0  # image requests answered (for fail_after)
        self.models = tuple(models)
        self.api_key = api_key  # None: accept any key
        self.latency = latency
        self.faults: dict[str, list[str]] = {}
        self.requests: list[dict] = []
        self.answered: dict[str, int] = {}  # prompt -> answers given at temperature > 0 without a seed
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

    def take_image_turn(self) -> bool:
        """Count one image request; False once `fail_after` of them were answered."""
        with self._lock:
            if self.fail_after is not None and self.image_answers >= self.fail_after:
                return False
            self.image_answers += 1
            return True

    def reply(self, model: str, prompt: str, body: dict) -> str:
        """The answer to one request: `answer(model, prompt)` when given, else the default answer for
        this sample (by the request's seed, else by count at temperature > 0, else always the first)."""
        if self.answer is not None:
            return self.answer(model, prompt)
        seed, temperature = body.get("seed"), body.get("temperature")
        if isinstance(seed, int) and not isinstance(seed, bool):
            variant = seed
        elif isinstance(temperature, (int, float)) and temperature > 0:
            with self._lock:
                variant = self.answered.get(prompt, 0)
                self.answered[prompt] = variant + 1
        else:
            variant = 0
        return default_answer(model, prompt, variant)

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
        if self.owner.max_body is not None and length > self.owner.max_body:
            self._error(413, f"Request body too large ({length} bytes; limit {self.owner.max_body})", "payload_too_large")
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
        prompt, images = _message_parts(messages)
        if model not in self.owner.models:
            self._error(404, f"The model `{model}` does not exist", "model_not_found")
            return
        if images and self.owner.reject_images is not None:
            self._error(400, self.owner.reject_images, "invalid_request_error")
            return
        if images and not self.owner.take_image_turn():
            self._error(400, "Invalid request: the server stopped accepting this request", "invalid_request_error")
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
        content = None
        if fault != "nocontent":
            seen = self.owner.vision_answer(images) if images and self.owner.vision_answer is not None else None
            content = seen if seen is not None else self.owner.reply(model, prompt, body)
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
            "usage": _usage(prompt, len(images), content or ""),
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
