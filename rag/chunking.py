"""Paper -> Chunks, a pure function. Abstracts usually fit one chunk; longer text is split on
sentence boundaries with a little overlap so a fact near a boundary is whole in some chunk."""

from __future__ import annotations

from rag.text import split_sentences
from rag.types import Chunk, Paper


def _split_long_sentence(sentence: str, max_words: int) -> list[str]:
    words = sentence.split()
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]


def chunk_text(text: str, max_words: int = 180, overlap: int = 1) -> list[str]:
    """Greedy packing of whole sentences up to `max_words`, repeating `overlap` sentences."""
    sentences: list[str] = []
    for s in split_sentences(text):
        sentences.extend(_split_long_sentence(s, max_words) if len(s.split()) > max_words else [s])
    chunks: list[str] = []
    start = 0
    while start < len(sentences):
        end, words = start, 0
        while end < len(sentences) and (end == start or words + len(sentences[end].split()) <= max_words):
            words += len(sentences[end].split())
            end += 1
        chunks.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        start = max(end - overlap, start + 1)
    return chunks


def chunk_id(paper_id: str, index: int) -> str:
    """Stable across re-ingests, so a changed paper's chunks are upserted in place."""
    return f"{paper_id}:{index}"


def chunk_number(chunk_id: str) -> int:
    """A chunk's place in its paper, read back from its id (a stored record carries no index)."""
    number = chunk_id.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 1 << 30


def chunk_paper(paper: Paper, max_words: int = 180, overlap: int = 1) -> list[Chunk]:
    """A paper with no abstract still gets one chunk (its title) so it stays searchable."""
    if paper.blocks:
        return chunk_blocks(paper, max_words, overlap)
    pieces = chunk_text(paper.abstract, max_words, overlap) if paper.abstract else [paper.title]
    return [Chunk(chunk_id=chunk_id(paper.paper_id, i), paper_id=paper.paper_id, index=i, text=t) for i, t in enumerate(pieces)]


def chunk_blocks(paper: Paper, max_words: int = 180, overlap: int = 1) -> list[Chunk]:
    """Full text follows the paper's structure: whole paragraphs are packed up to `max_words`, a
    chunk never spans two sections, and it keeps the page it starts on so a citation can name it.
    A paragraph longer than a chunk is split on sentences as abstracts are."""
    pieces: list[tuple[str, int | None]] = []
    current: list[str] = []
    words, page, section = 0, None, None

    def close() -> None:
        nonlocal words
        if current:
            pieces.append((" ".join(current), page))
            current.clear()
        words = 0

    for block in paper.blocks:
        n = len(block.text.split())
        if block.section != section or (current and words + n > max_words):
            close()
        section = block.section
        if n > max_words:
            pieces.extend((t, block.page) for t in chunk_text(block.text, max_words, overlap))
            continue
        if not current:
            page = block.page
        current.append(block.text)
        words += n
    close()
    return [
        Chunk(chunk_id=chunk_id(paper.paper_id, i), paper_id=paper.paper_id, index=i, text=t, page=p)
        for i, (t, p) in enumerate(pieces)
    ]


def dense_text(title: str, text: str) -> str:
    """What the embedder sees: the title anchors every chunk to its paper's topic."""
    return text if text == title else f"{title}. {text}"


def lexical_text(title: str, authors: tuple[str, ...] | list[str], text: str) -> str:
    """What BM25 sees: authors too, so 'what did <name> study' finds the paper."""
    return " ".join([title, " ".join(authors), "" if text == title else text])
