"""The http backend against a small OpenAI-compatible server started on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from medmm.models import ModelError, Request, UnsupportedError, load


class FakeServer:
    """Speaks enough of /v1/chat/completions: text echo, usage, logprobs; can fail or stall."""

    def __init__(self) -> None:
        self.fail_next = 0
        self.delay = 0.0
        self.logprobs = True
        self.requests: list[dict] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body})
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                    fail = server.fail_next > 0
                    if fail:
                        server.fail_next -= 1
                try:
                    time.sleep(server.delay)
                    if fail:
                        self.send_response(503)
                        self.end_headers()
                        self.wfile.write(b"overloaded")
                        return
                    content = body["messages"][-1]["content"]
                    texts = [c["text"] for c in content if c["type"] == "text"] if isinstance(content, list) else [content]
                    n_images = sum(1 for c in content if c["type"] == "image_url") if isinstance(content, list) else 0
                    choice = {"index": 0, "message": {"role": "assistant", "content": f"echo {texts[-1]} [{n_images} image(s)]"},
                              "finish_reason": "stop"}
                    if body.get("logprobs") and server.logprobs:
                        choice["logprobs"] = {"content": [{"token": "yes", "logprob": -0.25, "top_logprobs": [
                            {"token": "yes", "logprob": -0.25}, {"token": " no", "logprob": -1.5},
                            {"token": "maybe", "logprob": -3.0}]}]}
                    payload = {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": [choice],
                               "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
                    data = json.dumps(payload).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with server.lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def _img() -> Image.Image:
    return Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))


def test_generate_sends_images_and_model(server):
    vlm = load(f"http:{server.url}", model="medgemma-local")
    gens = vlm.generate([Request(images=[_img(), _img()], prompt="Any nodule?"), Request(prompt="Hello")], max_new_tokens=7)
    assert [g.text for g in gens] == ["echo Any nodule? [2 image(s)]", "echo Hello [0 image(s)]"]
    assert gens[0].prompt_tokens == 12 and gens[0].completion_tokens == 3 and gens[0].finish_reason == "stop"
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    body = next(r["body"] for r in server.requests if "Any nodule?" in json.dumps(r["body"]))  # requests run concurrently
    assert body["model"] == "medgemma-local" and body["max_tokens"] == 7 and body["temperature"] == 0.0
    urls = [c["image_url"]["url"] for c in body["messages"][-1]["content"] if c["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)


def test_retries_on_503_then_succeeds(server):
    server.fail_next = 2
    vlm = load(server.url, retries=3, backoff=0.01)
    assert vlm.generate([Request(prompt="again")])[0].text.startswith("echo again")
    assert len(server.requests) == 3


def test_gives_up_after_retries(server):
    server.fail_next = 10
    vlm = load(server.url, retries=1, backoff=0.01)
    with pytest.raises(ModelError, match="HTTP 503.*after 2 attempt"):
        vlm.generate([Request(prompt="x")])


def test_timeout_is_a_clear_error(server):
    server.delay = 1.0
    vlm = load(server.url, timeout=0.2, retries=0)
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="did not answer within 0.2 s"):
        vlm.generate([Request(prompt="slow")])
    assert time.perf_counter() - t0 < 1.0


def test_server_down_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vlm = load(f"http://127.0.0.1:{port}", retries=1, backoff=0.01)
    with pytest.raises(ModelError, match="cannot reach .* is the server running"):
        vlm.generate([Request(prompt="x")])


def test_logprobs_path(server):
    vlm = load(server.url)
    scores = vlm.score_options([Request(images=[_img()], prompt="Nodule?")], ["yes", "no", "unlisted"])[0]
    assert scores[0] == pytest.approx(-0.25) and scores[1] == pytest.approx(-1.5)  # " no" matched after stripping
    assert scores[2] == -math.inf  # outside the server's top-k
    body = server.requests[-1]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1


def test_no_logprobs_means_unsupported(server):
    server.logprobs = False
    with pytest.raises(UnsupportedError, match="no logprobs"):
        load(server.url).score_options([Request(prompt="x")], ["yes", "no"])


def test_concurrency_limit(server):
    server.delay = 0.2
    vlm = load(server.url, concurrency=2)
    t0 = time.perf_counter()
    vlm.generate([Request(prompt=str(i)) for i in range(4)])
    elapsed = time.perf_counter() - t0
    assert server.max_active == 2
    assert 0.35 < elapsed < 1.5  # two waves of two
