"""All settings in one place: defaults < RAG_* environment variables < explicit overrides (CLI flags)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from rag.errors import InputError
from rag.models import DEFAULT_LLM

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("paper-rag", appauthor=False))


def _default_models_dir() -> Path:
    # Inside a checkout the models live in ./models (as the README says); an installed copy uses the data dir.
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "models"
    return _default_data_dir() / "models"


def _meta(description: str) -> dict:
    return {"description": description}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir, metadata=_meta("Where the Chroma store and indexes live."))
    models_dir: Path = field(default_factory=_default_models_dir, metadata=_meta("Where `rag models pull` puts model files."))
    model: str = field(default=DEFAULT_LLM, metadata=_meta("Local model: a name from `rag models list` or a path to any GGUF file."))
    chroma_url: str = field(default="", metadata=_meta("A Chroma server (http://HOST:PORT) to use instead of the embedded store."))
    llm_url: str = field(default="", metadata=_meta("An OpenAI-compatible server (http://HOST:PORT/v1) to generate with instead of the local model."))
    llm_timeout: float = field(default=120.0, metadata=_meta("Seconds to wait for the model server's next words before giving up (connecting: 10 s)."))
    collection: str = field(default="papers", metadata=_meta("Chroma collection name."))
    k: int = field(default=3, metadata=_meta("Papers given to the model for `ask`."))
    list_k: int = field(default=5, metadata=_meta("Papers given to the model for a 'which papers ...' question."))
    list_min_relevance: float = field(default=0.35, metadata=_meta("Relevance the second and later papers of a 'which papers ...' question need."))
    summary_k: int = field(default=8, metadata=_meta("Papers gathered for `summarize`."))
    min_relevance: float = field(default=0.40, metadata=_meta("Below this relevance (0..1) a paper is not used to answer a question."))
    rerank: str = field(default="model", metadata=_meta("Who decides whether the best passages answer a question at all: model (a cross-encoder) or off (the relevance cut-off alone)."))
    min_rerank: float = field(default=0.5, metadata=_meta("Cross-encoder score (a logit) one of the three best passages needs for a question to be answered..."))
    confident_relevance: float = field(default=0.5, metadata=_meta("...unless the best paper's relevance reaches this."))
    support_min_rerank: float = field(default=0.5, metadata=_meta("Cross-encoder score a second or later paper needs to be given to the model beside the answering one (off for yes/no and 'which papers' questions)."))
    min_rerank_yes_no: float = field(default=-3.5, metadata=_meta("The same for a yes/no question the judge decides: what it gets past this is a direction the judge is sure of, or the paper's own words."))
    summary_max_papers: int = field(default=16, metadata=_meta("Most papers a summary draws on; past summary_k they are summarised in groups, then combined."))
    summary_min_relevance: float = field(default=0.25, metadata=_meta("Below this relevance a paper is left out of a summary."))
    combine_max_tokens: int = field(default=90, metadata=_meta("Longest closing overview of a summary done in groups (about two sentences)."))
    summary_relative: float = field(default=0.6, metadata=_meta("A summary also leaves out papers scoring below this share of the best paper's relevance."))
    judge: str = field(default="model", metadata=_meta("Who decides a yes/no question's direction from the papers: model (the local model reads the paper's closest sentences) or off."))
    min_support: float = field(default=0.5, metadata=_meta("Share of a sentence's content words its cited paper must contain for the sentence to be shown."))
    dense_weight: float = field(default=0.7, metadata=_meta("Weight of embedding similarity against query-term coverage in relevance."))
    chunk_words: int = field(default=180, metadata=_meta("Longest chunk, in words, before text is split on sentences."))
    chunk_overlap: int = field(default=1, metadata=_meta("Sentences repeated between neighbouring chunks."))
    context_tokens: int = field(default=1400, metadata=_meta("Token budget for the source texts in one prompt."))
    focus_tokens: int = field(default=250, metadata=_meta("For a question: tokens of each abstract given to the model, its first sentence and those closest to the question (0: the whole abstract)."))
    max_tokens: int = field(default=160, metadata=_meta("Longest answer to a question, in tokens."))
    summary_max_tokens: int = field(default=400, metadata=_meta("Longest summary, in tokens."))
    n_ctx: int = field(default=4096, metadata=_meta("Model context window in tokens."))
    threads: int = field(default_factory=lambda: os.cpu_count() or 2, metadata=_meta("CPU threads for the model."))
    prompt_cache: str = field(default="on", metadata=_meta("on: a fresh process restores the model's state after the prompt start every question shares (models/prompt-cache/); off: reads the whole prompt."))
    seed_dir: Path = field(default=PROJECT_ROOT / "seeds", metadata=_meta("What `rag ingest` reads when given no path."))

    def __post_init__(self):
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"setting {name} must be {' or '.join(allowed)}, got {getattr(self, name)!r} (check RAG_{name.upper()})")
        for f in fields(self):
            low, high = _RANGES.get(f.name, (None, None))
            value = getattr(self, f.name)
            if low is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value) or value < low or (high is not None and value > high) or (f.name in _POSITIVE and value <= 0):
                raise InputError(f"setting {f.name} must be {_range_text(f.name, low, high)}, got {value!r} (check RAG_{f.name.upper()})")

    def with_overrides(self, **overrides) -> "Settings":
        """Apply CLI flags; None means 'not given' so the lower layers keep their value."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **{k: _coerce(k, v) for k, v in given.items()})

    @classmethod
    def load(cls, **overrides) -> "Settings":
        env = {}
        for f in fields(cls):
            value = os.environ.get(f"RAG_{f.name.upper()}")
            if value not in (None, ""):
                env[f.name] = value
        settings = cls().with_overrides(**{**env, **{k: v for k, v in overrides.items() if v is not None}})
        _check_folder(settings.data_dir, "data dir", "--data-dir or RAG_DATA_DIR")
        _check_folder(settings.models_dir, "models dir", "RAG_MODELS_DIR")
        return settings

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(name, environment variable, description) for every setting, for docs and `--help`."""
        return [(f.name, f"RAG_{f.name.upper()}", f.metadata["description"]) for f in fields(cls)]


def _coerce(name: str, value):
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise InputError(f"setting {name} needs a number, got {value!r} (check RAG_{name.upper()})") from None
    return str(value)


# Allowed ranges, checked whatever the source (environment, flag, library call): RAG_K=-1 was
# accepted while `-k -1` was refused. (low, high); high None means no upper bound.
_RANGES = {
    **{name: (1, None) for name in (
        "k", "list_k", "summary_k", "summary_max_papers", "combine_max_tokens", "chunk_words", "context_tokens",
        "max_tokens", "summary_max_tokens", "n_ctx", "threads",
    )},
    "chunk_overlap": (0, None),
    "focus_tokens": (0, None),
    **{name: (0, 1) for name in (
        "list_min_relevance", "min_relevance", "summary_min_relevance", "summary_relative", "min_support", "dense_weight",
        "confident_relevance",
    )},
    "llm_timeout": (0, None),
}
_POSITIVE = {"llm_timeout"}
# Word-valued settings: a wrong word is refused when the settings are read, before any work (a bad
# RAG_JUDGE used to surface only after retrieval had printed its evidence).
_CHOICES = {"rerank": ("model", "off"), "judge": ("model", "off"), "prompt_cache": ("on", "off")}  # more than 0, not 0 itself


def _range_text(name: str, low, high) -> str:
    if name in _POSITIVE:
        return "more than 0"
    if high is None:
        return f"{low} or more"
    return f"between {low} and {high}"


def _check_folder(path: Path, what: str, where: str) -> None:
    """A folder the tool will create or use must not be, or lie under, an existing file."""
    path = Path(path).expanduser()
    probe = path
    try:
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            why = "is a file, not a folder" if probe == path else f"is not a folder ({probe} is a file)"
            raise InputError(f"{what} {path} {why}; check {where}")
    except OSError:
        return  # cannot look (permissions): the command that uses it says what is wrong
