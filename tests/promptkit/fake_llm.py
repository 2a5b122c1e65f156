"""Test helpers: the fake OpenAI-compatible server (from bench/) and a CLI runner.

Imported by the promptkit test modules; the server module is loaded from its file so neither the
tests nor the benchmark need the repository root on sys.path.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest
from cli_runner import Result, run_cli  # noqa: F401  (re-exported for the promptkit tests)

REPO = Path(__file__).resolve().parents[2]


def _load_server_module():
    name = "fake_llm_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "fake_llm_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


FakeLLMServer = _load_server_module().FakeLLMServer
API_KEY = "sk-test-secret-123"


@pytest.fixture
def llm_server(monkeypatch):
    """A running fake server expecting API_KEY; OPENAI_* env vars point at it."""
    server = FakeLLMServer(api_key=API_KEY)
    server.start()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A localhost port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
