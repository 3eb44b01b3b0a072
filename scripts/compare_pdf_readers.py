#!/usr/bin/env python
"""Compare PDF text libraries (pypdf, pypdfium2, pdfminer.six) on the ten real papers, to choose
the one rag/pdf.py reads with by measurement rather than by reputation.

pypdf, used today, glues words on some two-column ACL papers ("Keepingwithpastwork,wereportmacro")
and leaves ligatures (U+FB01 "fi") in the text. This script extracts plain text per page with each
library and measures speed (best of 3 runs over all the PDFs) and text-quality proxies: glued
letter-only tokens longer than 25 characters, the share of English-looking tokens, ligatures left,
words split by line-end hyphenation, (cid:NN) / U+FFFD characters, and whether page 1 holds the
paper's title. PyMuPDF is left out on purpose: it is AGPL-3.0.

    python scripts/compare_pdf_readers.py [--pdfs DIR] [--out docs/pdf_readers.json] [--runs 3]

A library that is not installed is skipped with a note. The PDFs are read where they are, never copied.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import os
import re
import sys
import time
import unicodedata
import warnings
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Titles as printed on each paper's first page. 1903.10676.pdf is a one-page excerpt (the results
# page of SciBERT): its page carries no title, so it has none to find.
TITLES = {
    "1903.10676.pdf": None,
    "2020.acl-main.447.pdf": "S2ORC: The Semantic Scholar Open Research Corpus",
    "2023.eacl-main.121.pdf": "LongEval: Guidelines for Human Evaluation of Faithfulness in Long-form Summarization",
    "2203.00130v1.pdf": "Paper Plain: Making Medical Research Papers Approachable to Healthcare Consumers with Natural Language Processing",
    "2206.10883v3.pdf": "Multi-LexSum: Real-World Summaries of Civil Rights Lawsuits at Multiple Granularities",
    "2302.07302v1.pdf": "CiteSee: Augmenting Citations in Scientific Papers with Persistent and Personalized Historical Context",
    "2304.02623v1.pdf": "Beyond Summarization: Designing AI Support for Real-World Expository Writing Tasks",
    "molecular-prediction-explanations.pdf": "A Perspective on Explanations of Molecular Prediction Models",
    "papermage.pdf": "PaperMage: A Unified Toolkit for Processing, Representing, and Manipulating Visually-Rich Scientific Documents",
    "pasa.pdf": "PaSa: An LLM Agent for Comprehensive Academic Paper Search",
}

LIGATURES = re.compile("[\ufb00-\ufb06]")
CID = re.compile(r"\(cid:\d+\)")
# "exam-\nple": a letter, a hyphen at the end of a line, a lower-case letter starting the next
# (pdfminer puts a blank line between the lines of a double-spaced preprint).
HYPHEN_SPLIT = re.compile(r"[^\W\d_]-[ \t]*\r?\n\s*[^\W\d_A-Z]")
# Letters only, allowing the punctuation that glued words swallow ("Keepingwithpastwork,wereportmacro").
GLUED = re.compile(r"[^\W\d_]+(?:[,.;:'\u2019][^\W\d_]+)*")
EDGE_PUNCT = "\"'()[]{}<>.,;:!?\u2018\u2019\u201c\u201d*\u2020\u2021"


# --- extractors: path -> list of page texts ---------------------------------------------------

def pypdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(path).pages]


def pdfium_pages(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        out = []
        for page in doc:
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def pdfminer_pages(path: Path) -> list[str]:
    from pdfminer.converter import TextConverter
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    out = []
    with open(path, "rb") as fh:
        rsrc = PDFResourceManager()
        buf = io.StringIO()
        device = TextConverter(rsrc, buf, laparams=LAParams())
        interp = PDFPageInterpreter(rsrc, device)
        for page in PDFPage.get_pages(fh):
            interp.process_page(page)
            out.append(buf.getvalue().rstrip("\f"))  # TextConverter ends each page with a form feed
            buf.seek(0)
            buf.truncate()
        device.close()
    return out


LIBRARIES = {  # name -> (distribution, extractor)
    "pypdf": ("pypdf", pypdf_pages),
    "pypdfium2": ("pypdfium2", pdfium_pages),
    "pdfminer.six": ("pdfminer.six", pdfminer_pages),
}
# pdfium marks a line-end hyphen as U+FFFE and joins the two lines ("substan\ufffetially",
# but also "BERT\ufffeBase"). This derived row shows its text with the marker dropped.
PDFIUM_DEHYPHENATED = "pypdfium2 (U+FFFE dropped)"


# --- measures ----------------------------------------------------------------------------------

def tokens(text: str) -> list[str]:
    return text.split()


def core(token: str) -> str:
    return token.strip(EDGE_PUNCT)


def quality(pages: list[str], words: set[str]) -> dict:
    text = "\n".join(pages).replace("\r\n", "\n")
    toks = tokens(text)
    cores = [core(t) for t in toks]
    glued = [c for c in cores if len(c) > 25 and GLUED.fullmatch(c)]
    long_chars = sum(len(t) for t in toks if len(t) > 25)  # any characters: pdfminer glues whole pages of EACL
    english = sum(1 for c in cores if c.isalpha() and c.lower() in words)
    n = max(len(toks), 1)
    return {
        "tokens": len(toks),
        "glued_tokens": len(glued),
        "glued_per_10k": round(1e4 * len(glued) / n, 2),
        "long_token_char_share": round(long_chars / max(sum(map(len, toks)), 1), 4),
        "english_share": round(english / n, 4),
        "ligatures": len(LIGATURES.findall(text)),
        "hyphen_splits": len(HYPHEN_SPLIT.findall(text)),
        "fffe_markers": text.count("\ufffe"),
        "cid_or_fffd": len(CID.findall(text)) + text.count("\ufffd"),
        "glued_examples": glued[:3],
    }


def norm(text: str) -> str:
    """For the title check: compatibility forms (ligatures), case and whitespace do not count."""
    text = unicodedata.normalize("NFKC", text.replace("\ufffe", "-")).casefold()
    return " ".join(text.split())


def title_found(first_page: str, title: str | None) -> bool | None:
    return None if title is None else norm(title) in norm(first_page)


def word_list(texts_by_lib: dict[str, dict[str, list[str]]]) -> tuple[set[str], str]:
    dict_path = Path("/usr/share/dict/words")
    if dict_path.is_file() and dict_path.stat().st_size > 0:
        words = {w.strip().lower() for w in dict_path.read_text(errors="ignore").split() if w.strip().isalpha()}
        return words, str(dict_path)
    sets = []
    for pages_by_file in texts_by_lib.values():
        s = set()
        for pages in pages_by_file.values():
            s.update(c.lower() for c in map(core, tokens("\n".join(pages))) if c.isalpha())
        sets.append(s)
    # Words all three libraries produce: glued words, split fragments and ligature spellings
    # that only one library makes are left out.
    return set.intersection(*sets), "intersection of the alphabetic words of the libraries' texts"


def machine() -> dict:
    from rag.bench import machine_info  # the project's one reader of /proc/cpuinfo

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {**machine_info(), "load_avg_1min_at_start": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdfs", type=Path, default=ROOT.parent / "shared" / "corpora" / "pdfs")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "pdf_readers.json")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per library; the best counts")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # pypdf and pdfminer log recoverable font problems
    warnings.simplefilter("ignore")

    files = sorted(args.pdfs.glob("*.pdf"))
    if not files:
        sys.exit(f"no PDFs in {args.pdfs}")
    libs, versions, skipped = {}, {}, {}
    for name, (dist, fn) in LIBRARIES.items():
        try:
            versions[name] = metadata.version(dist)
            libs[name] = fn
        except metadata.PackageNotFoundError:
            skipped[name] = "not installed"
    if "pypdfium2" in libs:
        import pypdfium2.version as pv

        versions["pdfium"] = str(pv.PDFIUM_INFO)

    texts: dict[str, dict[str, list[str]]] = {}
    timing: dict[str, dict] = {}
    for name, fn in libs.items():
        per_file = collections.defaultdict(list)
        totals = []
        for _ in range(args.runs):
            total = 0.0
            for f in files:
                start = time.perf_counter()
                pages = fn(f)
                took = time.perf_counter() - start
                per_file[f.name].append(took)
                total += took
                texts.setdefault(name, {})[f.name] = pages
            totals.append(total)
        n_pages = sum(len(p) for p in texts[name].values())
        best = min(totals)
        timing[name] = {
            "best_total_s": round(best, 3), "runs_total_s": [round(t, 3) for t in totals],
            "s_per_doc": round(best / len(files), 3), "pages": n_pages, "pages_per_s": round(n_pages / best, 1),
            "best_s_by_file": {k: round(min(v), 3) for k, v in per_file.items()},
        }
        print(f"timed {name}: best {best:.2f} s over {len(files)} PDFs", file=sys.stderr)

    words, words_from = word_list(texts)
    if "pypdfium2" in texts:
        texts[PDFIUM_DEHYPHENATED] = {k: [p.replace("\ufffe", "") for p in v] for k, v in texts["pypdfium2"].items()}
        timing[PDFIUM_DEHYPHENATED] = timing["pypdfium2"]

    results = {}
    for name, by_file in texts.items():
        q = quality([p for f in files for p in by_file[f.name]], words)
        per_file_q = {f.name: {k: v for k, v in quality(by_file[f.name], words).items() if k != "glued_examples"} for f in files}
        found = {f.name: title_found(by_file[f.name][0] if by_file[f.name] else "", TITLES.get(f.name)) for f in files}
        results[name] = {**timing[name], **q, "titles_found": found, "quality_by_file": per_file_q}

    head = f"{'library':28} {'s/doc':>6} {'pages/s':>8} {'glued/10k':>9} {'long>25':>7} {'english':>8} {'ligat':>6} {'hyph-split':>10} {'U+FFFE':>7} {'cid/FFFD':>8} {'titles':>7}"
    print(head)
    print("-" * len(head))
    n_titles = sum(t is not None for t in TITLES.values())
    for name, r in results.items():
        hits = sum(bool(v) for v in r["titles_found"].values())
        print(f"{name:28} {r['s_per_doc']:6.3f} {r['pages_per_s']:8.1f} {r['glued_per_10k']:9.2f} {r['long_token_char_share']:7.3f} {r['english_share']:8.3f} "
              f"{r['ligatures']:6d} {r['hyphen_splits']:10d} {r['fffe_markers']:7d} {r['cid_or_fffd']:8d} {hits:>4}/{n_titles}")
    print("\ntitles missed on page 1:")
    for name, r in results.items():
        missed = [k for k, v in r["titles_found"].items() if v is False]
        print(f"  {name:28} {', '.join(missed) or '-'}")
    print("\nglued examples:")
    for name, r in results.items():
        print(f"  {name:28} {r['glued_examples']}")

    report = {
        "purpose": "choose the PDF text library for rag/pdf.py by measurement (scripts/compare_pdf_readers.py)",
        "machine": machine(), "versions": versions, "skipped": skipped,
        "pdfs": [f.name for f in files], "runs": args.runs, "word_list": words_from, "word_list_size": len(words),
        "notes": {
            "glued_per_10k": "tokens >25 chars of letters only (inner , . ; : ' allowed) per 10,000 tokens",
            "long_token_char_share": "share of non-space characters that sit in tokens >25 chars of any kind",
            "english_share": "share of whitespace tokens that, edge punctuation stripped, are alphabetic and in the word list",
            "hyphen_splits": "letter-hyphen-newline-lowercase letter (exam-\\nple)",
            "fffe_markers": "U+FFFE: pdfium's mark for a line-end hyphen (the lines are joined)",
            "titles_found": "title as printed, NFKC + casefold + whitespace collapsed, in page 1's text; null: no title on the page",
            PDFIUM_DEHYPHENATED: "pypdfium2's own text with U+FFFE removed; its timing is pypdfium2's",
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
