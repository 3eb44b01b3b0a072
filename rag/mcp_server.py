"""`rag mcp`: the library served over stdio with the official MCP SDK, so an assistant or editor
that speaks the Model Context Protocol can search the papers, ask with cited titles, summarise a
topic and list the papers, with the CLI's filters. Each tool returns the same JSON as the
command's `--json`; a bad input comes back as a tool error of one line, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from rag.errors import RagError
from rag.filters import Filters

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from rag.pipeline import Rag

INSTRUCTIONS = (
    "Tools over the user's own research papers, offline. search_papers finds papers; ask answers a "
    "question citing paper titles (and pages for PDFs), or says the papers do not cover it; "
    "summarize writes a cited synthesis of a topic; list_papers lists what is indexed. Filters: "
    "author (substring), year (2021, 2020..2023, 2020.., ..2023), source (file or folder), title (substring), "
    "category (an arXiv category such as cs.CL, or an archive such as cs)."
)


def build_server(make_rag: Callable[[], "Rag"]) -> "MCPServer":
    """A server whose tools share one `Rag`, built on the first call (the model loads once)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("paper-rag", instructions=INSTRUCTIONS)
    built: list["Rag"] = []

    def parsed(author: str | None, year: str | None, source: str | None, title: str | None, category: str | None) -> Filters | None:
        try:
            return Filters.parse(author=author, year=year, source=source, title=title, category=category)
        except RagError as exc:
            raise ToolError(str(exc)) from None

    def call(work: Callable[["Rag"], Any]) -> Any:
        try:
            if not built:
                built.append(make_rag())
            return work(built[0])
        except RagError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    def search_papers(query: str, k: int = 5, author: str | None = None, year: str | None = None, source: str | None = None, title: str | None = None, category: str | None = None) -> dict:
        """Papers that match the query, best first, each with its best passage (retrieval only, fast)."""
        filters = parsed(author, year, source, title, category)
        return call(lambda rag: {"query": query, "results": [s.to_json(n) for n, s in enumerate(rag.search(query, k=k, filters=filters), 1)]})

    @server.tool()
    def ask(question: str, k: int | None = None, author: str | None = None, year: str | None = None, source: str | None = None, title: str | None = None, category: str | None = None) -> dict:
        """Answer from the papers in a few sentences, each citing a paper title; says so when the
        papers do not cover the question. Takes seconds on a laptop (a local model writes it)."""
        filters = parsed(author, year, source, title, category)
        return call(lambda rag: rag.ask(question, k=k, filters=filters).to_json())

    @server.tool()
    def summarize(topic: str, k: int | None = None, author: str | None = None, year: str | None = None, source: str | None = None, title: str | None = None, category: str | None = None) -> dict:
        """A short synthesis of what the papers say about a topic, each claim cited."""
        filters = parsed(author, year, source, title, category)
        return call(lambda rag: rag.summarize(topic, k=k, filters=filters).to_json())

    @server.tool()
    def list_papers(author: str | None = None, year: str | None = None, source: str | None = None, title: str | None = None, category: str | None = None) -> dict:
        """Every indexed paper (id, title, authors, year, venue, files), optionally filtered."""
        filters = parsed(author, year, source, title, category)
        return call(lambda rag: {"papers": [p.to_json() for p in rag.papers(filters)]})

    return server
