"""RemoteGenerator against a stub OpenAI-compatible server on loopback (stdlib http.server in a
thread) that can end a streamed answer badly: early [DONE] without a finish reason (what
llama-cpp-python's server does to a running stream when another request arrives), a body cut off
mid-chunk, a reset connection. Each must be a one-line ModelError naming the fix, never a half
answer passed off as a whole one."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.errors import ModelError
from rag.generation import RemoteGenerator

HINT = "--interrupt_requests False"
MESSAGES = [{"role": "user", "content": "hi"}]


def _event(content: str | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
    body = {"id": "x", "object": "chat.completion.chunk", "choices": choices}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


DONE = b"data: [DONE]\n\n"
WORDS = [_event("The "), _event("answer "), _event("is 42.")]
# How each scenario streams: a list of SSE pieces, then how the connection ends.
SCENARIOS = {
    "complete": (WORDS + [_event(finish="stop"), _event(usage={"prompt_tokens": 5, "completion_tokens": 3}), DONE], "end"),
    "length": (WORDS + [_event(finish="length"), DONE], "end"),
    "early-done": (WORDS + [DONE], "end"),  # llama-cpp-python's interrupt: [DONE] with no finish reason
    "no-done": (WORDS, "end"),  # stream simply stops, cleanly terminated
    "cut-chunk": (WORDS, "cut"),  # connection closed before the terminating chunk: incomplete read
    "reset": (WORDS, "reset"),  # TCP reset mid-stream
    "half-event": (WORDS + [b'data: {"id": "x", "choi'], "cut-line"),  # closed in the middle of an event
    "stall": (WORDS, "stall"),  # headers and some tokens, then nothing
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = self.path.strip("/").split("/")[0]
        if name not in SCENARIOS:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        pieces, ending = SCENARIOS[name]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        if ending == "end":
            self.wfile.write(b"0\r\n\r\n")
        elif ending == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif ending == "stall":
            time.sleep(2)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture(scope="module")
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_complete_stream_is_an_answer(stub_url):
    shown: list[str] = []
    gen = RemoteGenerator(f"{stub_url}/complete/v1").generate(MESSAGES, 16, on_token=shown.append)
    assert gen.text == "The answer is 42."
    assert "".join(shown) == gen.text
    assert (gen.prompt_tokens, gen.completion_tokens, gen.truncated) == (5, 3, False)


def test_a_stream_stopped_by_max_tokens_is_truncated_not_an_error(stub_url):
    gen = RemoteGenerator(f"{stub_url}/length/v1").generate(MESSAGES, 3)
    assert gen.text == "The answer is 42."
    assert gen.truncated


@pytest.mark.parametrize("scenario", ["early-done", "no-done", "cut-chunk", "reset", "half-event"])
def test_an_interrupted_stream_is_a_one_line_model_error_naming_the_fix(stub_url, scenario):
    with pytest.raises(ModelError) as info:
        RemoteGenerator(f"{stub_url}/{scenario}/v1").generate(MESSAGES, 16)
    message = str(info.value)
    assert "\n" not in message
    assert "ended the answer early" in message and "interrupted" in message
    assert HINT in message


def test_a_stalled_stream_is_a_timeout_not_an_interruption(stub_url):
    with pytest.raises(ModelError, match=r"did not answer within 0\.5s") as info:
        RemoteGenerator(f"{stub_url}/stall/v1", timeout=0.5).generate(MESSAGES, 16)
    assert HINT not in str(info.value)


def test_an_error_status_is_not_mistaken_for_an_interruption(stub_url):
    with pytest.raises(ModelError, match="answered 404") as info:
        RemoteGenerator(f"{stub_url}/missing/v1").generate(MESSAGES, 16)
    assert HINT not in str(info.value)
