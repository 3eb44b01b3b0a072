"""Past one machine: a real Chroma server (`chroma run`) and a real OpenAI-compatible model server
(`python -m llama_cpp.server`) started on loopback for this module, torn down after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SEEDS_DIR, load_script
from rag.errors import ModelError, StoreError
from rag.generation import RemoteGenerator
from rag.pipeline import Rag
from rag.settings import Settings

SMALL_MODEL = "qwen2.5-coder-0.5b-instruct.gguf"
servers = load_script()  # free ports, start-and-wait, process-group teardown: as the load test does


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = servers.free_port()
    chroma = Path(sys.executable).with_name("chroma")
    folder = tmp_path_factory.mktemp("chroma-server")
    proc = servers.start_server([str(chroma), "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
                  f"http://127.0.0.1:{port}/api/v2/heartbeat", folder / "server.log")
    yield f"http://127.0.0.1:{port}"
    servers.stop(proc)


@pytest.fixture(scope="module")
def llm_url(models_dir, tmp_path_factory):
    model = models_dir / SMALL_MODEL
    assert model.exists(), f"{model} is missing: run `rag models pull qwen2.5-coder-0.5b` (CI does)"
    port = servers.free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "4096", "--n_threads", "2"]
    proc = servers.start_server(cmd, f"http://127.0.0.1:{port}/v1/models", tmp_path_factory.mktemp("llm-server") / "server.log")
    yield f"http://127.0.0.1:{port}/v1"
    servers.stop(proc)


@pytest.fixture(scope="module")
def served(chroma_url, real_embedder, tmp_path_factory) -> Rag:
    settings = Settings.load(data_dir=tmp_path_factory.mktemp("server-cache"), chroma_url=chroma_url)
    rag = Rag(settings, embedder=real_embedder)
    report = rag.ingest([SEEDS_DIR])
    assert report.added == 82
    return rag


def test_ingest_and_search_through_the_chroma_server(served, chroma_url):
    assert served.store.url == chroma_url
    assert not served.store.path.exists()  # nothing embedded locally: the server holds the papers
    hits = served.search("transformer for small tabular classification", k=3)
    assert hits[0].title.startswith("TabPFN")
    assert served.ingest([SEEDS_DIR]).chunks_embedded == 0


def test_lexical_side_is_built_from_the_server_and_follows_its_changes(served, real_embedder, chroma_url, tmp_path):
    other = Rag(Settings.load(data_dir=tmp_path / "other-cache", chroma_url=chroma_url), embedder=real_embedder)
    assert other.search("Sayantan Datta Carl Marshall", k=1)[0].title.startswith("Efficient Graphics")
    note = tmp_path / "note.md"
    note.write_text("# Zyxwv quantum gardening\n\nZyxwv is a method for growing quantum gardens on lattices.\n")
    served.ingest([note])
    # `other` has its own cache; the server's changed generation makes it rebuild.
    assert other.search("zyxwv quantum gardening", k=1, mode="lexical")[0].title == "Zyxwv quantum gardening"


def test_ask_through_the_remote_model_cites_only_given_papers(served, llm_url):
    rag = Rag(served.settings.with_overrides(llm_url=llm_url), embedder=served.embedder, store=served.store)
    shown: list[str] = []
    answer = rag.ask("What speedups does data-efficient augmentation achieve on CIFAR10 and SVHN?", on_token=shown.append)
    assert isinstance(rag.generator, RemoteGenerator)
    assert answer.timings.completion_tokens > 0
    assert {c.title for c in answer.citations} <= {s.title for s in answer.sources}
    if not answer.abstained:
        assert "".join(shown).strip() == answer.answer
        assert "Data-Efficient Augmentation for Training Neural Networks" in {c.title for c in answer.citations}
    assert rag.ask("What is the capital of Australia?").abstained


def test_unreachable_servers_are_one_line_errors(tmp_path):
    port = servers.free_port()  # nothing listens here
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        Rag(Settings.load(data_dir=tmp_path, chroma_url=f"http://127.0.0.1:{port}")).papers()
    with pytest.raises(ModelError, match="cannot reach the model server"):
        RemoteGenerator(f"http://127.0.0.1:{port}/v1").generate([{"role": "user", "content": "hi"}], 4)


def test_two_processes_ingesting_one_embedded_store_are_serialised(tmp_path):
    """A second `rag ingest` while another process holds the store gets a clear refusal."""
    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
         "print('locked', flush=True); time.sleep(60)", str(data / "ingest.lock")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        rag_bin = Path(sys.executable).with_name("rag")
        result = subprocess.run([str(rag_bin), "ingest", str(SEEDS_DIR), "--data-dir", str(data)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [f"error: another ingest is running on {data}; wait for it to finish"]
    finally:
        holder.kill()
        holder.wait()
