"""`rag mcp`: the library's tools driven by the MCP SDK's own client, in-process with a fake model
and over stdio as an MCP client launches it (issue #16)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from conftest import FakeGenerator
from rag.mcp_server import build_server
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT

mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed (scripts/setup.sh installs it)")

AUG = "Data-Efficient Augmentation for Training Neural Networks"
AUG_Q = "What speedups does the data-efficient augmentation method achieve on CIFAR10?"
AUG_FACT = "The subset selection method achieves 6.3x speedup on CIFAR10 and 2.2x speedup on SVHN"


def data(result) -> dict:
    """A tool's JSON, as its text content carries it."""
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


def calls(server, *steps):
    """Run (tool, arguments) steps through one client session; their results, in order."""

    async def go():
        async with mcp.Client(server) as client:
            out = [await client.list_tools()]
            for name, args in steps:
                out.append(await client.call_tool(name, args))
            return out

    return asyncio.run(go())


@pytest.fixture
def served(seeded_real, real_embedder):
    llm = FakeGenerator()
    made = []

    def make():
        made.append(Rag(seeded_real.settings, embedder=real_embedder, generator=llm))
        return made[-1]

    return build_server(make), llm, made


def test_the_tools_answer_like_the_commands(served):
    server, llm, made = served
    llm.queue(f"{AUG_FACT} [1].")
    tools, search, asked, listed, bad = calls(
        server,
        ("search_papers", {"query": "data augmentation subset selection", "k": 3}),
        ("ask", {"question": AUG_Q}),
        ("list_papers", {"author": "Sayedana"}),
        ("list_papers", {"year": "soon"}),
    )
    assert {t.name for t in tools.tools} == {"search_papers", "ask", "summarize", "list_papers"}
    results = data(search)["results"]
    assert len(results) == 3 and results[0]["title"] == AUG
    answer = data(asked)
    assert answer["answer"] == f"{AUG_FACT} [1]." and [c["title"] for c in answer["citations"]] == [AUG]
    assert [p["title"] for p in data(listed)["papers"]] == [
        "Relative Almost Sure Regret Bounds for Certainty Equivalence Control of Markov Jump Systems"
    ]
    assert bad.is_error and "year" in bad.content[0].text and "Traceback" not in bad.content[0].text
    assert len(made) == 1  # one Rag (one model load) for every call


def test_an_empty_question_is_a_one_line_tool_error(served):
    server, llm, _ = served
    _, result = calls(server, ("ask", {"question": "  "}))
    assert result.is_error and result.content[0].text.strip().count("\n") == 0 and "empty" in result.content[0].text


def test_rag_mcp_serves_over_stdio(seeded_real):
    """The command an MCP client registers, launched as the client launches it."""
    params = mcp.StdioServerParameters(
        command=sys.executable, args=["-m", "rag", "mcp"], cwd=str(PROJECT_ROOT),
        env={**os.environ, "RAG_DATA_DIR": str(seeded_real.settings.data_dir)},
    )
    tools, listed = calls(params, ("list_papers", {"title": "TabPFN"}))
    assert "ask" in {t.name for t in tools.tools}
    assert [p["title"] for p in data(listed)["papers"]] == ["TabPFN: A Transformer That Solves Small Tabular Classification Problems in a Second"]
