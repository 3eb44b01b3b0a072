"""The CLI's boundary (issue 17, items 7, 8, 10 and the 'one line, exit 2, never a traceback' list):

* hostile text (terminal escape sequences in titles and in model output) never reaches the
  terminal raw, while --json keeps the original text;
* credentials in --llm-url / --chroma-url are never printed;
* a model server that takes the connection and never answers is a timeout, not a hang;
* bad settings, bad paths, over-long prompts, malformed question/benchmark files and unreadable
  inputs are one `error:` line on stderr, exit code 2, never a traceback.

CLI cases run through Typer's CliRunner; fakes enter through the runner's Rag factory (the Typer context object, as in test_cli.py) to
give the CLI the fake embedder, so everything from settings to the model server client is real.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SEEDS_DIR, FakeEmbedder, FakeGenerator
from rag import cli, safe_text
from rag.errors import InputError, ModelError
from rag.filters import Filters
from rag.generation import LlamaCppGenerator, RemoteGenerator
from rag.answer import MAX_QUESTION_CHARS
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings

ESC = "\x1b"
OSC_TITLE = "\x1b]0;pwned\x07"  # renames the terminal window
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
RED = "\x1b[31m"
SECRET = "hunter2"
CREDS = f"bob:{SECRET}@"

NOTE_TITLE = f"Zorblax {OSC_TITLE}Field {RED}Notes{CLEAR}"
NOTE = f"# {NOTE_TITLE}\n\nZorblax crystals resonate at dusk with a faint blue light in cold caves.\n"
NOTE_QUESTION = "Why do Zorblax crystals resonate at dusk?"
BIB = "@article{evil2020,\n  title = {Quantum Gravel " + RED + "Sorting" + OSC_TITLE + "},\n  author = {Ada Stone},\n  year = {2020}\n}\n"
# Hostile model output, streamed by FakeGenerator in 3-character pieces, so every sequence is split.
HOSTILE_REPLY = f"Zorblax crystals {OSC_TITLE}resonate at dusk {CLEAR}with a faint blue light {RED}[1]."


def run(runner: CliRunner, *args: str, **kw):
    return runner.invoke(cli.app, list(args), **kw)


def assert_one_line_error(result, *needles: str) -> str:
    """Exit code 2, exactly one line on stderr starting `error: `, no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, f"control characters reached the terminal: {bad!r} in {text!r}"


@pytest.fixture
def fake_cli(runner):
    """`rag` with the fake embedder; the model is `generator` when given, else whatever the
    settings say (so --llm-url builds the real RemoteGenerator through the Rag facade)."""
    embedder = FakeEmbedder()
    state = {"generator": None}

    def make(**kw):
        return Rag(Settings.load(**kw), embedder=embedder, generator=state["generator"])

    runner.factory = make

    def use(generator=None):
        state["generator"] = generator
        return generator

    return use


@pytest.fixture
def hostile_store(runner, fake_cli, tmp_path) -> Path:
    """A store holding a Markdown note and a BibTeX entry whose titles carry escape sequences."""
    note, bib = tmp_path / "note.md", tmp_path / "refs.bib"
    note.write_text(NOTE, encoding="utf-8")
    bib.write_text(BIB, encoding="utf-8")
    result = run(runner, "ingest", str(note), str(bib))
    assert result.exit_code == 0, result.output
    return tmp_path


# --- item 7: escape sequences ----------------------------------------------------------------


def test_clean_strips_sequences_and_controls_but_keeps_text_newlines_and_tabs():
    text = f"a{OSC_TITLE}b{CLEAR}c{RED}d\x9b2Je\x07\x00\x08\r\x7f\x85f\tg\nh\u202eI\x1bcJ"
    assert safe_text.clean(text) == "abcde" + "f\tg\nhIJ"
    assert safe_text.clean_line("one\ntwo\tthree") == "one two three"
    assert safe_text.clean("Über café — naïve “quotes” 数学") == "Über café — naïve “quotes” 数学"


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_clean_per_piece_never_lets_a_split_sequence_form(size):
    hostile = f"x{OSC_TITLE}y{CLEAR}z{RED}w\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
    shown = "".join(safe_text.clean(hostile[i : i + size]) for i in range(0, len(hostile), size))
    assert_no_controls(shown)
    assert ESC not in shown


def test_papers_and_search_print_titles_without_escape_sequences(runner, hostile_store):
    for args in (["papers"], ["papers", "-v"], ["search", "Zorblax crystals dusk"], ["search", "quantum gravel sorting"]):
        result = run(runner, *args)
        assert result.exit_code == 0, result.output
        assert_no_controls(result.stdout)
    plain = run(runner, "papers").stdout
    assert "Zorblax Field Notes" in plain and "Quantum Gravel Sorting" in plain


def test_json_keeps_the_original_title_escaped(runner, hostile_store):
    result = run(runner, "papers", "--json")
    assert ESC not in result.stdout  # json.dumps writes \u001b
    titles = {p["title"] for p in json.loads(result.stdout)}
    assert NOTE_TITLE in titles
    search = json.loads(run(runner, "search", "Zorblax crystals dusk", "--json").stdout)
    assert search["results"][0]["title"] == NOTE_TITLE


@pytest.mark.parametrize("command", ["ask", "summarize"])
def test_streamed_model_output_and_sources_are_printed_without_escapes(runner, hostile_store, fake_cli, command):
    llm = fake_cli(FakeGenerator([HOSTILE_REPLY]))
    result = run(runner, command, NOTE_QUESTION, "--show-quotes")
    assert result.exit_code == 0, result.output
    assert len(llm.calls) == 1
    assert_no_controls(result.stdout)
    assert "Zorblax crystals resonate at dusk" in result.stdout
    assert "Zorblax Field Notes" in result.stdout.split("Sources:", 1)[1]


def test_ask_json_keeps_the_model_output_as_written(runner, hostile_store, fake_cli):
    fake_cli(FakeGenerator([HOSTILE_REPLY]))
    result = run(runner, "ask", NOTE_QUESTION, "--json")
    assert result.exit_code == 0, result.output
    assert ESC not in result.stdout
    data = json.loads(result.stdout)
    assert OSC_TITLE in data["answer"]
    assert data["sources"][0]["title"] == NOTE_TITLE


def test_chat_prints_answers_without_escapes(runner, hostile_store, fake_cli):
    fake_cli(FakeGenerator([HOSTILE_REPLY]))
    result = run(runner, "chat", input=NOTE_QUESTION + "\n/exit\n")
    assert result.exit_code == 0, result.output
    assert_no_controls(result.stdout)
    assert "Zorblax crystals resonate at dusk" in result.stdout


def test_an_error_line_naming_a_hostile_path_has_no_escapes(runner, tmp_path):
    missing = tmp_path / f"paper{OSC_TITLE}{CLEAR}.md"
    line = assert_one_line_error(run(runner, "ingest", str(missing)), "no such file")
    assert_no_controls(line)


def test_a_warning_line_naming_a_hostile_file_has_no_escapes(runner, fake_cli, tmp_path):
    good = tmp_path / "good.md"
    good.write_text(NOTE, encoding="utf-8")
    empty = tmp_path / f"empty{OSC_TITLE}.txt"
    empty.write_bytes(b"")
    result = run(runner, "ingest", str(good), str(empty))
    assert result.exit_code == 1, result.output
    assert "warning: " in result.stderr
    assert_no_controls(result.stderr.replace("\r", ""))  # the progress bar redraws with \r


# --- item 8: credentials in URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"http://{CREDS}host:8000/v1", "http://***@host:8000/v1"),
        (f"https://bob:p@ss{SECRET}@host/v1", "https://***@host/v1"),
        ("http://token@host", "http://***@host"),
        ("http://host:8000/v1", "http://host:8000/v1"),
        ("", ""),
    ],
)
def test_redact_url(url, shown):
    assert safe_text.redact_url(url) == shown
    assert SECRET not in safe_text.redact_urls(f"cannot reach {url} (ConnectError)")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_llm_url_credentials_never_printed_in_errors(runner, hostile_store, fake_cli):
    url = f"http://{CREDS}127.0.0.1:{_closed_port()}/v1"
    line = assert_one_line_error(run(runner, "ask", NOTE_QUESTION, "--llm-url", url), "cannot reach the model server", "***@127.0.0.1")
    assert SECRET not in line and "bob" not in line


def test_chroma_url_credentials_never_printed_in_errors(runner, tmp_path):
    url = f"http://{CREDS}127.0.0.1:{_closed_port()}"
    result = run(runner, "papers", "--chroma-url", url)
    assert result.exit_code == 2, result.output
    assert SECRET not in result.output and "Traceback" not in result.output


def test_doctor_never_prints_credentials(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "no-models"))
    port = _closed_port()
    result = run(runner, "doctor", "--llm-url", f"http://{CREDS}127.0.0.1:{port}/v1", "--chroma-url", f"http://{CREDS}127.0.0.1:{port}")
    assert result.exit_code == 1, result.output
    assert "FAIL model server http://***@127.0.0.1" in result.stdout
    assert SECRET not in result.output and "bob:" not in result.output


def _event(content=None, finish=None) -> bytes:
    body = {"choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Answering(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that streams one fixed answer."""

    reply = "Zorblax crystals resonate at dusk with a faint blue light [1]."

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(0, len(self.reply), 8):
            self.wfile.write(_event(self.reply[i : i + 8]))
        self.wfile.write(_event(finish="stop") + b"data: [DONE]\n\n")


@pytest.fixture
def answering_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_json_model_field_never_shows_credentials(runner, hostile_store, fake_cli, answering_server):
    result = run(runner, "ask", NOTE_QUESTION, "--json", "--llm-url", f"http://{CREDS}{answering_server}/v1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "Zorblax crystals resonate" in data["answer"]
    assert data["model"] == f"default@http://***@{answering_server}/v1"
    assert SECRET not in result.output


# --- item 10: a model server that never answers ---------------------------------------------------


@pytest.fixture
def silent_server():
    """Accepts every connection, reads nothing, answers nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_remote_generator_times_out_on_a_silent_server(silent_server):
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"did not answer within 1s") as info:
        RemoteGenerator(silent_server, timeout=1).generate([{"role": "user", "content": "hi"}], 4)
    assert time.monotonic() - started < 10
    assert "\n" not in str(info.value) and "RAG_LLM_TIMEOUT" in str(info.value)


def test_llm_timeout_setting_reaches_the_remote_generator(monkeypatch, data_dir):
    assert Settings.load().llm_timeout == 120
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "2.5")
    generator = Rag(Settings.load(llm_url="http://127.0.0.1:1/v1")).generator
    assert isinstance(generator, RemoteGenerator)
    assert generator.timeout == 2.5 and generator.connect_timeout == 10


def test_ask_against_a_silent_server_is_one_line_after_the_timeout(runner, hostile_store, fake_cli, silent_server, monkeypatch):
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "1")
    started = time.monotonic()
    result = run(runner, "ask", NOTE_QUESTION, "--llm-url", silent_server)
    assert time.monotonic() - started < 15
    assert_one_line_error(result, "did not answer within 1s")


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan", "inf"])
def test_llm_timeout_must_be_a_positive_number(runner, monkeypatch, value):
    monkeypatch.setenv("RAG_LLM_TIMEOUT", value)
    assert_one_line_error(run(runner, "search", "anything"), "RAG_LLM_TIMEOUT")


# --- one line, exit 2, never a traceback ----------------------------------------------------------


@pytest.mark.parametrize("command", [["models", "list"], ["models", "pull"], ["models", "pull", "minilm-l6-int8"]])
def test_bad_number_in_environment_for_models_commands(runner, monkeypatch, tmp_path, command):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RAG_K", "abc")
    assert_one_line_error(run(runner, *command), "RAG_K")
    assert not (tmp_path / "models").exists()  # nothing was fetched


@pytest.mark.parametrize(
    "name, value",
    [("RAG_K", "-1"), ("RAG_K", "0"), ("RAG_SUMMARY_K", "0"), ("RAG_MIN_RELEVANCE", "1.5"), ("RAG_DENSE_WEIGHT", "nan"),
     ("RAG_N_CTX", "0"), ("RAG_CHUNK_OVERLAP", "-1"), ("RAG_THREADS", "-2")],
)
def test_out_of_range_settings_from_the_environment(runner, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert_one_line_error(run(runner, "search", "anything"), name)


def test_out_of_range_settings_in_the_library_too():
    with pytest.raises(InputError, match="RAG_K"):
        Settings.load(k=-1)
    assert Settings.load(k=1, chunk_overlap=0, summary_relative=0.0, min_relevance=1.0).k == 1


@pytest.mark.parametrize("command", [["papers"], ["search", "anything"], ["ingest", str(SEEDS_DIR)], ["ask", "anything?"]])
@pytest.mark.parametrize("under", [False, True], ids=["file", "under-a-file"])
def test_data_dir_pointing_at_a_file(runner, monkeypatch, tmp_path, command, under):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("RAG_DATA_DIR", str(blocker / "sub" if under else blocker))
    assert_one_line_error(run(runner, *command), "data dir", "not a folder", "RAG_DATA_DIR")
    assert blocker.read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("command", [["models", "list"], ["models", "pull", "minilm-l6-int8"], ["doctor"]])
def test_models_dir_pointing_at_a_file(runner, monkeypatch, tmp_path, command):
    blocker = tmp_path / "models"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("RAG_MODELS_DIR", str(blocker))
    assert_one_line_error(run(runner, *command), "models dir", "RAG_MODELS_DIR")


@pytest.mark.parametrize("command", ["ask", "summarize"])
def test_a_100kb_question_is_refused_before_the_model(runner, hostile_store, fake_cli, command):
    llm = fake_cli(FakeGenerator())
    question = "Why do Zorblax crystals resonate? " * 3000
    assert_one_line_error(run(runner, command, question), f"{MAX_QUESTION_CHARS:,}")
    assert llm.calls == []
    at_limit = ("Why do Zorblax crystals resonate at dusk? " * 100)[:MAX_QUESTION_CHARS]
    rag = Rag(Settings.load(), embedder=FakeEmbedder(), generator=FakeGenerator(["NOT FOUND"] * 2))
    assert rag.ask(at_limit).question == at_limit.strip()  # the limit itself is accepted


def test_a_prompt_longer_than_the_context_window_is_one_line(runner, seeded_real, monkeypatch, models_dir):
    """RAG_N_CTX=64 with the real model: llama.cpp raised 'Requested tokens exceed context window'."""
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    monkeypatch.setenv("RAG_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("RAG_N_CTX", "64")
    line = assert_one_line_error(run(runner, "ask", "What speedups does the data-efficient augmentation method achieve on CIFAR10?"))
    assert "context window" in line and "RAG_N_CTX" in line


def test_llama_generator_checks_the_prompt_length_before_generating(default_llm):
    gen = LlamaCppGenerator(default_llm, n_ctx=256, threads=2)
    shown = []
    with pytest.raises(ModelError, match=r"does not fit the model's context window of 256 tokens"):
        gen.generate([{"role": "user", "content": "word " * 400}], 8, on_token=shown.append)
    assert shown == []
    assert gen.generate([{"role": "user", "content": "Say OK."}], 2).completion_tokens >= 1  # a short prompt still runs


@pytest.mark.parametrize(
    "line, why",
    [
        ("[1, 2]", "JSON object"),
        ("this is not json", "not JSON"),
        ('{"gold_titles": ["A"]}', "'question'"),
        ('{"question": 5}', "'question'"),
        ('{"question": "   "}', "'question'"),
        ('{"question": "Which?", "gold_titles": "A title"}', "gold_titles"),
        ('{"question": "Which?", "answer_facts": [1]}', "answer_facts"),
        ('{"question": "Which?", "kind": 3}', "kind"),
    ],
)
def test_eval_names_the_malformed_line(runner, fake_cli, tmp_path, line, why):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "Which papers study bidding?", "gold_titles": []}\n\n' + line + "\n", encoding="utf-8")
    assert_one_line_error(run(runner, "eval", str(questions), "--no-llm"), f"{questions}:3", why)


def test_eval_on_a_file_that_is_not_text(runner, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes(b"\xff\xfe\x00binary")
    assert_one_line_error(run(runner, "eval", str(questions), "--no-llm"), str(questions), "UTF-8")


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"sizes": "many"}', b'{"sizes": [1]}', b"\xff\xfe"])
def test_bench_from_a_malformed_json_names_the_file(runner, tmp_path, content):
    saved = tmp_path / "benchmarks.json"
    saved.write_bytes(content)
    assert_one_line_error(run(runner, "bench", "--from-json", str(saved), "--out", str(tmp_path / "out")), str(saved))


def test_an_os_error_from_any_command_is_one_line(runner, tmp_path):
    """The boundary's last resort: an OSError no library layer named (here: --out is a file)."""
    out = tmp_path / "out"
    out.write_text("x", encoding="utf-8")
    assert_one_line_error(run(runner, "bench", "--from-json", str(PROJECT_ROOT / "docs" / "benchmarks.json"), "--out", str(out)), str(out))


def test_an_unreadable_file_given_to_ingest_is_one_error_line(runner, tmp_path):
    """Only files that cannot be read. As root every permission allows reading, so the test uses a
    file the kernel refuses to read (/proc/self/mem: EIO) and, when not root, a mode-000 file."""
    targets = [Path("/proc/self/mem")] if Path("/proc/self/mem").exists() else []
    if os.geteuid() != 0:
        locked = tmp_path / "locked.md"
        locked.write_text(NOTE, encoding="utf-8")
        locked.chmod(0)
        targets.append(locked)
    assert targets, "no way to make an unreadable file here"
    for target in targets:
        line = assert_one_line_error(run(runner, "ingest", str(target)), f"{target.name}: cannot read")
        assert "Usage:" not in line


def test_a_fifo_or_dev_zero_given_to_ingest_is_one_line_not_a_hang(runner, tmp_path):
    """Only regular files are read: a FIFO hung the ingest, /dev/zero died with MemoryError. Run
    in a thread with a deadline, so a regression fails instead of hanging the suite."""
    import threading

    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        results = []
        worker = threading.Thread(target=lambda t=target: results.append(run(runner, "ingest", str(t))), daemon=True)
        worker.start()
        worker.join(timeout=60)
        assert results, f"`rag ingest {target}` did not return within 60 s"
        assert_one_line_error(results[0], str(target))


@pytest.mark.parametrize("year", ["0000", "0999", "2101", "0000..2020", "..9999", "2020..3000"])
def test_years_outside_1000_to_2100_are_refused(runner, year):
    assert_one_line_error(run(runner, "papers", "--year", year), "--year", "between 1000 and 2100")
    with pytest.raises(InputError):
        Filters.parse(year=year)


def test_years_inside_the_range_still_work():
    f = Filters.parse(year="1000..2100")
    assert (f.year_from, f.year_to) == (1000, 2100)
    assert Filters.parse(year="2021").year_to == 2021


def test_every_command_body_runs_inside_the_error_boundary(runner, monkeypatch, tmp_path):
    """A RagError from settings, raised before any command-specific work, is one line for every
    command (help aside): no command reads settings outside the boundary."""
    monkeypatch.setenv("RAG_K", "abc")
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "models"))
    calls = {
        ("ingest",): [str(SEEDS_DIR)],
        ("ask",): ["anything?"],
        ("summarize",): ["anything"],
        ("search",): ["anything"],
        ("papers",): [],
        ("remove",): ["abc"],
        ("doctor",): [],
        ("eval",): ["--synthetic", "2"],
        ("chat",): [],
        ("mcp",): [],
        ("bench",): ["--sizes", "82", "--no-llm", "--out", str(tmp_path / "out")],
        ("models", "pull"): [],
        ("models", "list"): [],
    }
    from test_cli import all_commands

    for command in all_commands():
        assert tuple(command) in calls, f"add `rag {' '.join(command)}` to this test"
        assert_one_line_error(run(runner, *command, *calls[tuple(command)], input=""), "RAG_K")
