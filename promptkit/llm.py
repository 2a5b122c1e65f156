"""Querying any OpenAI-compatible chat endpoint. The only module that imports `openai`.

Prompts are sent concurrently (asyncio, bounded by a semaphore); 429, 5xx, connection errors and
timeouts are retried by the client with exponential backoff (`retries`, `timeout`). Every client
error is mapped to an LLMError with one line that says what failed and what to change.
`ChatSession` sends one message of content parts (a text and JPEG images, for `describe-clips`) per
request and returns the answer with its token usage; a server that takes no images, or finds them
too large, gets its own line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

from promptkit.errors import LLMError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
VISION_MODELS_HINT = "e.g. gpt-4o-mini, Qwen2.5-VL-7B-Instruct, llava-1.5-7b-hf"
_NO_IMAGES = re.compile(
    r"not a multimodal|not multimodal|multimodal (?:input|model)s? (?:is |are )?not|only supported by certain models"
    r"|does not support (?:image|vision|multimodal)|(?:image|vision)s? (?:input|part|content)s? (?:is |are )?not supported"
    r"|unsupported (?:content|image)|image_url.{0,40}(?:not|unsupported)|no vision", re.IGNORECASE)
_TOO_LARGE = re.compile(r"too large|too big|too long|payload|exceeds? .{0,30}(?:size|limit)", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_credentials(text: str) -> str:
    """`text` with the `user:password@` part of every URL in it replaced by `***@`."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask. `api_key` / `base_url` None: read OPENAI_API_KEY / OPENAI_BASE_URL."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = None
    temperature: float | None = 0.7
    seed: int | None = None
    max_tokens: int = 400
    concurrency: int = 16
    retries: int = 3
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise LLMError(f"--model must name a model, got {self.model!r}")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise LLMError(f"--temperature must be between 0 and 2, got {self.temperature!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 16:
            raise LLMError(f"--max-tokens must be an integer >= 16, got {self.max_tokens!r}")
        if not isinstance(self.concurrency, int) or not 1 <= self.concurrency <= 256:
            raise LLMError(f"--concurrency must be between 1 and 256, got {self.concurrency!r}")
        if not isinstance(self.retries, int) or not 0 <= self.retries <= 20:
            raise LLMError(f"--retries must be between 0 and 20, got {self.retries!r}")
        if not 0 < self.timeout < float("inf"):
            raise LLMError(f"--timeout must be a finite number of seconds > 0, got {self.timeout!r}")

    def resolved_base_url(self) -> str:
        url = (self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError(f"bad --base-url {redact_credentials(url)!r}: expected http(s)://host[:port]/v1")
        return url.rstrip("/")

    def resolved_api_key(self) -> str:
        key = self.api_key if self.api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not key.strip():
            raise LLMError(
                "no API key: set OPENAI_API_KEY (for a local server any dummy value such as 'sk-local' works)"
            )
        return key.strip()


def endpoint_host(base_url: str) -> str:
    """`host[:port]` of an endpoint, without any user:password part (safe for provenance)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def ask_all(config: LLMConfig, prompts: Sequence[str], samples: int = 1) -> list[list[str]]:
    """Answers for every prompt: `result[i][s]` is sample `s` for `prompts[i]` (text, maybe empty).

    Raises LLMError on the first request that fails after the client's retries; the rest are cancelled.
    """
    if not isinstance(samples, int) or samples < 1:
        raise LLMError(f"--samples must be an integer >= 1, got {samples!r}")
    base_url = config.resolved_base_url()
    api_key = config.resolved_api_key()
    return asyncio.run(_ask_all(config, base_url, api_key, list(prompts), samples))


async def _ask_all(config: LLMConfig, base_url: str, api_key: str, prompts: list[str], samples: int) -> list[list[str]]:
    import openai

    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, max_retries=config.retries, timeout=config.timeout
    )
    shown = redact_credentials(base_url)  # what messages name: never the user:password part
    gate = asyncio.Semaphore(config.concurrency)
    jobs = [(i, s) for i in range(len(prompts)) for s in range(samples)]

    async def one(i: int, s: int) -> str:
        async with gate:
            seed = None if config.seed is None else config.seed + s
            return await _complete(client, config, shown, prompts[i], seed)

    tasks = [asyncio.ensure_future(one(i, s)) for i, s in jobs]
    try:
        await first_error_cancels_all(tasks)
        answers = [[""] * samples for _ in prompts]
        for (i, s), task in zip(jobs, tasks):
            answers[i][s] = task.result()
        return answers
    finally:
        # Ctrl-C (asyncio.run cancels this coroutine) or a failed request: stop every request and
        # collect its outcome before the client closes, so none ends later with a stray
        # "Task exception was never retrieved" naming a closed connection as the cause.
        await cancel_and_reap(tasks)
        await client.close()


async def cancel_and_reap(tasks: list[asyncio.Future]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    while True:
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
            return
        except asyncio.CancelledError:  # a second Ctrl-C while reaping: keep reaping, then stop
            if all(task.done() for task in tasks):
                raise


async def first_error_cancels_all(tasks: list[asyncio.Future]) -> None:
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if t.exception() is not None]
        if failed:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise failed[0].exception()


async def _complete(client, config: LLMConfig, base_url: str, prompt: str, seed: int | None) -> str:
    raw = await _request(client, config, base_url, prompt, seed)
    return answer_text(raw.status_code, raw.headers.get("content-type", ""), raw.text, base_url)


async def _request(client, config: LLMConfig, base_url: str, content: str | list[dict], seed: int | None):
    """One chat request with one user message (text, or a list of content parts); the raw response."""
    import openai

    extra: dict = {}
    if config.temperature is not None:
        extra["temperature"] = config.temperature
    if seed is not None:
        extra["seed"] = seed
    try:
        return await client.chat.completions.with_raw_response.create(
            model=config.model,
            messages=[{"role": "user", "content": content}],
            max_tokens=config.max_tokens,
            **extra,
        )
    except openai.OpenAIError as exc:
        raise await _explain(exc, client, config, base_url, images=not isinstance(content, str)) from exc


def image_part(jpeg: bytes) -> dict:
    """An `image_url` content part holding one JPEG as a base64 data URL."""
    return {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def usage_of(body: str) -> dict[str, int]:
    """prompt/completion/total tokens from a chat-completion body's `usage` (0 where not reported)."""
    try:
        usage = json.loads(body).get("usage")
    except (ValueError, AttributeError):
        usage = None
    usage = usage if isinstance(usage, dict) else {}
    return {key: int(usage[key]) if isinstance(usage.get(key), int) else 0 for key in USAGE_KEYS}


class ChatSession:
    """One client for many requests with content parts (images), used as `async with`; `ask(parts)`
    returns (answer text, usage). Retries, timeouts and error lines as for `ask_all`."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.base_url = config.resolved_base_url()
        self._api_key = config.resolved_api_key()
        self.shown = redact_credentials(self.base_url)
        self._client = None

    async def __aenter__(self) -> "ChatSession":
        import openai

        self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url,
                                          max_retries=self.config.retries, timeout=self.config.timeout)
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._client is not None:
            await self._client.close()

    async def ask(self, parts: list[dict], seed: int | None = None) -> tuple[str, dict[str, int]]:
        if self._client is None:
            raise LLMError("ChatSession.ask outside `async with`")
        raw = await _request(self._client, self.config, self.shown, parts, seed)
        text = answer_text(raw.status_code, raw.headers.get("content-type", ""), raw.text, self.shown)
        return text, usage_of(raw.text)


def answer_text(status: int, content_type: str, body: str, base_url: str) -> str:
    """The assistant text of a chat-completion response body ("" for a null content), or an LLMError
    saying what came back instead (not JSON, an HTML page, other JSON, no choices)."""
    hint = "check that --base-url is the server's OpenAI API root (ending in /v1)"
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        if "html" in content_type.lower() or body.lstrip()[:1] == "<":
            what = "an HTML page"
        elif data is None:
            what = "a body that is not valid JSON"
        else:
            what = "JSON that is not a chat completion"
        raise LLMError(f"the LLM server at {base_url} answered {status} with {what} ({_snippet(body)}) "
                       f"instead of an OpenAI chat completion: {hint}")
    choices = data["choices"]
    if not choices:
        raise LLMError(f"the LLM server at {base_url} answered a chat completion with no choices "
                       f"({_snippet(body)}): try again, or another --model")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        log.warning("the LLM answered no text (finish_reason %r)", reason)
        return ""
    if not isinstance(content, str):
        raise LLMError(f"the LLM server at {base_url} answered a message content that is not text "
                       f"({_snippet(body)}): {hint}")
    return content


def _snippet(body: str, limit: int = 60) -> str:
    text = " ".join(str(body).split())
    if not text:
        return "an empty body"
    return f"began: {text[:limit]!r}" + ("..." if len(text) > limit else "")


async def _explain(exc: Exception, client, config: LLMConfig, base_url: str, images: bool = False) -> LLMError:
    """One clear line for each way the endpoint can fail (with `images`: also a server that takes no
    images, and an image too large for it)."""
    import openai

    if images and isinstance(exc, openai.APIStatusError):
        found = _image_problem(exc.status_code, _message(exc), config, base_url)
        if found is not None:
            return found

    tries = {0: "(retries disabled)", 1: "after 1 retry"}.get(config.retries, f"after {config.retries} retries")
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(
            f"the LLM server at {base_url} did not answer within {config.timeout:g}s {tries}: "
            "raise --timeout or --retries, or check the server"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = redact_credentials(_root_cause(exc))
        return LLMError(
            f"cannot reach the LLM server at {base_url}: {cause} {tries} — is it running? "
            "(--base-url / OPENAI_BASE_URL)"
        )
    if isinstance(exc, openai.AuthenticationError):
        return LLMError(f"the LLM server at {base_url} rejected the API key (401): check OPENAI_API_KEY")
    if isinstance(exc, openai.PermissionDeniedError):
        return LLMError(f"the LLM server at {base_url} refused access (403): {_message(exc)}")
    if isinstance(exc, openai.NotFoundError):
        known = await _model_names(client)
        hint = f"available: {', '.join(known[:10])}" if known else "check --model, and that --base-url ends in /v1"
        return LLMError(f"model {config.model!r} not found at {base_url} (404): {hint}")
    if isinstance(exc, openai.RateLimitError):
        return LLMError(
            f"the LLM server at {base_url} kept rate-limiting (429) {tries}: lower --concurrency or raise --retries"
        )
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"the LLM server at {base_url} answered {exc.status_code} {tries}: "
                        f"{redact_credentials(_message(exc))}")
    return LLMError(redact_credentials(f"the LLM request to {base_url} failed: {exc}"))


def _image_problem(status: int, message: str, config: LLMConfig, base_url: str) -> LLMError | None:
    """The line for a request with images that the server refused for them, else None."""
    said = redact_credentials(message)
    if status == 413 or (status in (400, 422) and _TOO_LARGE.search(message) and "image" in message.lower()):
        return LLMError(f"the LLM server at {base_url} refused the request as too large ({status}: {said}): "
                        "lower --image-size (or --frames)")
    if status in (400, 415, 422, 500) and _NO_IMAGES.search(message):
        return LLMError(f"the model {config.model!r} at {base_url} does not accept images ({status}: {said}): "
                        f"choose a vision model ({VISION_MODELS_HINT})")
    return None


async def _model_names(client) -> list[str]:
    try:
        page = await client.with_options(max_retries=0, timeout=5.0).models.list()
        return sorted(model.id for model in page.data)
    except Exception as exc:  # best effort: only used to improve an error message
        log.debug("could not list models: %s", exc)
        return []


def _root_cause(exc: BaseException) -> str:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in chain):
        return "connection refused"
    if any(isinstance(e, OSError) and "name or service not known" in str(e).lower() for e in chain):
        return "unknown host"
    text = str(chain[-1]).strip() or type(chain[-1]).__name__
    return text.splitlines()[0][:200]


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:200]
    return str(getattr(exc, "message", exc))[:200]
