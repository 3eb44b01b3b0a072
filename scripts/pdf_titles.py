#!/usr/bin/env python
"""Print each PDF's title, its warnings and its read time (median of 3 reads), to measure the title
finder on real papers. Reads ../shared/corpora/pdfs by default; pass other PDFs or folders.

    python scripts/pdf_titles.py [--json out.json] [paths...]
"""

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import corpus  # noqa: E402
from rag.errors import InputError  # noqa: E402


def main(argv: list[str]) -> None:
    out = None
    if "--json" in argv:
        i = argv.index("--json")
        out, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    paths = [Path(a) for a in argv] or [ROOT.parent / "shared" / "corpora" / "pdfs"]
    rows = []
    for path in corpus.discover(paths):
        times = []
        try:
            for _ in range(3):
                start = time.perf_counter()
                read = corpus.read_file(path)
                times.append(time.perf_counter() - start)
        except InputError as exc:
            print(f"{'':8}  {path.name:40} not read: {exc}")
            continue
        (paper,) = read.papers
        rows.append({"file": path.name, "title": paper.title, "warnings": list(read.problems + read.warnings), "seconds": statistics.median(times)})
        print(f"{statistics.median(times):6.2f} s  {path.name:40} {paper.title}" + "".join(f"\n{'':50}warning: {p}" for p in read.problems + read.warnings))
    print(f"total {sum(r['seconds'] for r in rows):.2f} s")
    if out:
        out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
