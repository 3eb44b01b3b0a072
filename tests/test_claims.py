"""`rag eval` on a claims file (SciFact's shape): which way the answers go, scored against the
claims' labels, with the evidence papers named by corpus id (issue #13)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag import claims
from rag.corpus import corpus_titles
from rag.errors import InputError
from rag.types import Answer, Citation

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "scifact"


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def claims_file(tmp_path) -> Path:
    rows = [
        {"id": "1", "claim": "Aspirin lowers stroke risk.", "relevant_doc_ids": ["10"], "label": "SUPPORT"},
        {"id": "2", "claim": "Aspirin raises stroke risk.", "relevant_doc_ids": ["10"], "label": "CONTRADICT"},
        {"id": "3", "claim": "Aspirin cures baldness.", "relevant_doc_ids": ["11"], "label": "NOT_ENOUGH_INFO"},
        {"id": "4", "claim": "Statins lower cholesterol.", "relevant_doc_ids": ["11"], "label": "SUPPORT"},
    ]
    return _write(tmp_path / "claims.jsonl", rows)


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.jsonl.gz"
    rows = [{"_id": "10", "title": "Aspirin  and Stroke", "text": "Aspirin lowered stroke risk."}, {"_id": "11", "title": "Statins", "text": "Statins lower cholesterol."}]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return path


def test_claims_name_their_papers_by_corpus_id(claims_file, corpus):
    items = claims.load_claims(claims_file, corpus_titles(corpus))
    assert [c.evidence_titles for c in items[:2]] == [("Aspirin and Stroke",)] * 2  # the title as ingest cleans it
    assert items[0].question == "Is it true that aspirin lowers stroke risk?"
    assert claims.is_claims_file(claims_file) and not claims.is_claims_file(corpus)


def test_per_label_keeps_that_many_of_each(claims_file, corpus):
    items = claims.load_claims(claims_file, corpus_titles(corpus), per_label=1)
    assert [c.label for c in items] == ["SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"]


def test_an_unknown_paper_id_or_a_bad_line_is_one_clear_error(claims_file, tmp_path):
    with pytest.raises(InputError, match="paper id 10 is not in the corpus"):
        claims.load_claims(claims_file, {})
    bad = _write(tmp_path / "bad.jsonl", [{"claim": "x", "label": "MAYBE"}])
    with pytest.raises(InputError, match=r"bad.jsonl:1: a claim line needs"):
        claims.load_claims(bad, {})


def _answer(text: str, verdict: str = "", cited: str = "", abstained: bool = False) -> Answer:
    citations = [Citation(1, "p", cited)] if cited else []
    return Answer("q", text, abstained, citations, [], "fake", verdict=verdict)


def test_scores_count_endorsed_contradictions_and_stance(claims_file, corpus):
    replies = {
        "Is it true that aspirin lowers stroke risk?": _answer("Yes: it does [1].", "yes", "Aspirin and Stroke"),
        "Is it true that aspirin raises stroke risk?": _answer("Yes: it does [1].", "yes", "Aspirin and Stroke"),
        "Is it true that aspirin cures baldness?": _answer("The indexed papers do not settle this question.", "not settled", abstained=True),
        "Is it true that statins lower cholesterol?": _answer("No, they do not [1]."),  # no verdict: read off the first word
    }
    report = claims.evaluate_claims(replies.__getitem__, claims.load_claims(claims_file, corpus_titles(corpus)))
    s = report.scores
    assert s.contradicted_endorsed == 1 and s.stance_accuracy == pytest.approx(1 / 3)
    assert s.evidence_cited == pytest.approx(2 / 3) and s.not_settled_rate == 1.0
    assert "| contradicted claims endorsed | 1 of 1 |" in claims.render(report)


def test_cli_eval_on_claims(runner, claims_file, corpus, fake_embedder, fake_llm, data_dir):
    from rag.cli import app
    from rag.pipeline import Rag
    from rag.settings import Settings

    class Never:
        def judge(self, question, source):
            return "not settled"

    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=fake_embedder, generator=fake_llm, judge=Never())
    runner.invoke(app, ["ingest", str(corpus)])
    result = runner.invoke(app, ["eval", str(claims_file), "--corpus", str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["scores"]
    assert scores["claims"] == {"SUPPORT": 2, "CONTRADICT": 1, "NOT_ENOUGH_INFO": 1}
    assert scores["contradicted_endorsed"] == 0 and scores["not_settled_rate"] == 1.0
    missing = runner.invoke(app, ["eval", str(claims_file)])
    assert missing.exit_code == 2 and "paper id 10 is not in the corpus given with --corpus" in missing.stderr


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/corpora/scifact is absent (the real SciFact claims)")
def test_scifact_test_claims_load_with_their_titles():
    items = claims.load_claims(SCIFACT / "claims_test_labels.jsonl", corpus_titles(SCIFACT / "corpus.jsonl.gz"), per_label=20)
    assert len(items) == 60 and all(c.evidence_titles for c in items)
