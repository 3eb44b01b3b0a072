"""The records that flow between stages: files -> Paper -> Chunk -> store -> Source -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.text import tokenize


@dataclass(frozen=True)
class Block:
    """A paragraph of a full-text paper with where it sits, so chunks can follow the paper's
    structure and a citation can name the page."""

    text: str
    page: int | None = None  # 1-based page in the PDF; None for text without pages
    section: str = ""


@dataclass(frozen=True)
class Paper:
    """One paper as parsed from a file; `paper_id` is derived from the title so duplicates merge."""

    paper_id: str
    title: str
    authors: tuple[str, ...]
    abstract: str
    source: str  # path of the file it came from
    year: int | None = None
    venue: str = ""
    blocks: tuple[Block, ...] = ()  # full text in reading order; empty for listing/BibTeX records
    kind: str = "record"  # "record" (listing/BibTeX entry), "pdf" or "note": decides what may merge
    categories: tuple[str, ...] = ()  # arXiv categories ("cs.CL"), when the source lists them
    references: tuple[str, ...] = ()  # a PDF's reference list, one entry each: kept, never evidence


@dataclass(frozen=True)
class Chunk:
    """A piece of a paper small enough to embed; `chunk_id` is stable so re-ingest upserts in place."""

    chunk_id: str
    paper_id: str
    index: int
    text: str
    page: int | None = None  # page the chunk starts on, for full-text papers


@dataclass(frozen=True)
class Passage:
    """One chunk of a full-text paper that may reach the model, with the page it starts on."""

    text: str
    page: int | None = None
    opening: bool = False  # the paper's first chunk (its abstract): kept within reach of every question


@dataclass(frozen=True)
class Source:
    """A retrieved paper with its best chunk: what the model is shown and what citations point to.
    A full-text paper also carries its best `passages` for the question (best first): the answer
    gives the model several of them, and each citation names the page of the one it quotes."""

    paper_id: str
    title: str
    authors: tuple[str, ...]
    text: str
    score: float  # relevance 0..1 in hybrid search (the ranking key), higher is better
    similarity: float  # cosine similarity of the query to the best chunk
    lexical: float  # BM25 score of the paper's best chunk, 0 when BM25 did not find it
    coverage: float = 0.0  # IDF-weighted share of the query's terms found in the paper
    page: int | None = None  # page of the best chunk, when the paper has pages
    passages: tuple[Passage, ...] = field(default=(), compare=False)

    def page_of(self, sentence: str) -> int | None:
        """The page of the passage `sentence` (a quote of this paper) came from; `page` when the
        paper's text is one passage."""
        if len(self.passages) < 2 or not sentence:
            return self.passages[0].page if self.passages else self.page
        words = set(tokenize(sentence))
        return max(self.passages, key=lambda p: len(words & set(tokenize(p.text)))).page

    def to_json(self, rank: int) -> dict:
        """One result of `rag search --json`."""
        return {"rank": rank, "paper_id": self.paper_id, "title": self.title, "score": round(self.score, 6), "text": self.text, "page": self.page}


@dataclass(frozen=True)
class Citation:
    n: int
    paper_id: str
    title: str
    quote: str = field(default="", compare=False)  # the paper's sentence that best supports the claims citing it
    page: int | None = None

    def label(self) -> str:
        """How a citation is shown: `Title, p. 4` when the page is known."""
        return f"{self.title}, p. {self.page}" if self.page is not None else self.title


@dataclass
class Generation:
    """One model call, as every backend reports it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float
    total_s: float
    truncated: bool = False  # stopped by max_tokens, so the last sentence may be cut off


@dataclass(frozen=True)
class CheckedSentence:
    """A sentence the model wrote and what the check found; the held-back ones stay in the JSON."""

    text: str
    citations: tuple[int, ...]
    support: float
    supported: bool
    quote: str = ""  # the sentence of the first cited paper that best supports this one
    meaning: str = ""  # meaning.ENTAILED, CONTRADICTED or NOT_STATED against the cited paper
    page: int | None = None  # page of the passage the quote came from, for a full-text paper


@dataclass(frozen=True)
class Evidence:
    """A paper the answer will be drawn from and its sentence closest to the question, shown as
    soon as retrieval is done: on a 2-core laptop the model needs ~10 s before its first word."""

    n: int  # the number the answer cites it by
    title: str
    page: int | None
    sentence: str


@dataclass
class Timings:
    retrieve_s: float = 0.0
    evidence_s: float = 0.0  # when the evidence was ready to show (0: none was found)
    first_token_s: float = 0.0
    total_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, gen: Generation, elapsed_s: float) -> None:
        """Count one model call that ended `elapsed_s` after the question came in; the first call
        sets the time to first token."""
        if not self.first_token_s:
            self.first_token_s = elapsed_s - (gen.total_s - gen.first_token_s)
        self.prompt_tokens += gen.prompt_tokens
        self.completion_tokens += gen.completion_tokens


@dataclass
class Answer:
    """The result of `ask` or `summarize`. `sources` are numbered from 1 as the model saw them."""

    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    sources: list[Source]
    model: str
    timings: Timings = field(default_factory=Timings)
    used_papers: int = 0  # how many of the given papers the answer cites
    relevant_papers: int = 0  # how many papers passed the relevance cut-off (summaries may not fit them all)
    checked: list[CheckedSentence] = field(default_factory=list)  # every sentence the model wrote, shown or not
    verdict: str = ""  # for a yes/no question: "yes", "no" or "not settled", as the papers decide it

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title, "page": c.page, "quote": c.quote} for c in self.citations],
            "sources": [
                {
                    "n": n,
                    "paper_id": s.paper_id,
                    "title": s.title,
                    "score": round(s.score, 6),
                    "similarity": round(s.similarity, 4),
                    "text": s.text,
                    "page": s.page,
                }
                for n, s in enumerate(self.sources, start=1)
            ],
            "sentences": [
                {"text": c.text, "citations": list(c.citations), "support": round(c.support, 3), "supported": c.supported, "quote": c.quote, "meaning": c.meaning, "page": c.page}
                for c in self.checked
            ],
            "verdict": self.verdict,
            "used_papers": self.used_papers,
            "relevant_papers": self.relevant_papers,
            "model": self.model,
            "timings": {
                "retrieve_s": round(self.timings.retrieve_s, 4),
                "evidence_s": round(self.timings.evidence_s, 4),
                "first_token_s": round(self.timings.first_token_s, 4),
                "total_s": round(self.timings.total_s, 4),
                "prompt_tokens": self.timings.prompt_tokens,
                "completion_tokens": self.timings.completion_tokens,
            },
        }


@dataclass
class IngestReport:
    files: int = 0
    papers: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    pages: int = 0  # PDF pages in the files given (parsed, or known from an unchanged file's last parse)
    skipped: list[str] = field(default_factory=list)  # "path: reason" for each input not (fully) read


@dataclass(frozen=True)
class PaperInfo:
    """What `rag papers` lists: an indexed paper as the store knows it."""

    paper_id: str
    title: str
    authors: tuple[str, ...]
    source: str
    chunks: int
    year: int | None = None
    sources: tuple[str, ...] = ()  # every file the paper was read from (a PDF and a BibTeX entry, say)
    venue: str = ""
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """One paper of `rag papers --json` (and of `rag remove --json`)."""
        return {
            "paper_id": self.paper_id, "title": self.title, "authors": list(self.authors), "year": self.year, "venue": self.venue,
            "categories": list(self.categories), "source": self.source, "sources": list(self.sources), "chunks": self.chunks,
        }
