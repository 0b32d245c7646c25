"""The tasks of a trial: MQAR's generator and cache, needle examples, text splits, BPE and bits per byte."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from miras.config.schema import LmTask, MqarTask, NeedleTask
from miras.runners.tasks import IGNORE_INDEX, MQAR, Needle, TextLM, build_task, corpus, mqar, tokenizer
from miras.runners.tasks.needle import TEMPLATES, WORDS

V, T, K = 256, 64, 8


def one_hot_predictor(inputs_to_targets: dict[bytes, torch.Tensor], vocab: int):
    """A predictor that knows the answers: logits peaked on each example's targets."""

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        targets = torch.stack([inputs_to_targets[row.numpy().tobytes()] for row in inputs])
        logits = torch.zeros(*inputs.shape, vocab)
        logits.scatter_(2, targets.clamp(min=0)[..., None], 1.0)
        return logits

    return predict


def uniform_predictor(vocab: int):
    return lambda inputs: torch.zeros(*inputs.shape, vocab)


def take(iterator, n: int) -> list:
    return [next(iterator) for _ in range(n)]


# --- MQAR ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples() -> tuple[torch.Tensor, torch.Tensor]:
    return mqar.mqar_examples(np.arange(2000), vocab_size=V, seq_len=T, num_kv_pairs=K, power_a=0.01)


def test_mqar_keys_and_values_distinct_and_in_their_halves(examples):
    inputs, _ = examples
    keys, values = inputs[:, 0 : 2 * K : 2], inputs[:, 1 : 2 * K : 2]
    assert ((keys >= 1) & (keys < V // 2)).all()
    assert ((values >= V // 2) & (values < V)).all()
    assert all(len(set(row.tolist())) == K for row in keys), "a key repeats inside an example"
    assert all(len(set(row.tolist())) == K for row in values)
    assert ((inputs >= 0) & (inputs < V)).all()


def test_mqar_targets_only_at_queries_and_equal_to_the_value(examples):
    inputs, targets = examples
    for row_in, row_t in zip(inputs.tolist(), targets.tolist(), strict=True):
        pairs = dict(zip(row_in[0 : 2 * K : 2], row_in[1 : 2 * K : 2], strict=True))
        positions = [p for p, t in enumerate(row_t) if t != IGNORE_INDEX]
        assert len(positions) == K
        assert all(p >= 2 * K and (p - 2 * K) % 2 == 0 for p in positions)
        assert sorted(row_in[p] for p in positions) == sorted(pairs), "each key is queried exactly once"
        assert all(row_t[p] == pairs[row_in[p]] for p in positions)


def test_mqar_gaps_follow_zoologys_power_law():
    """First query gap: our Gumbel top-k vs zoology's sequential np.random.choice (total variation)."""
    space, a, n = (T - 2 * K) // 2, 0.01, 20000
    u = mqar.uniforms(np.arange(n), 0, space)
    ours = np.bincount(mqar._power_law_gaps(u, a, K)[:, 0], minlength=space) / n
    p = a * np.arange(1, space + 1) ** (a - 1)
    p /= p.sum()
    np.random.seed(0)
    theirs = np.bincount([np.random.choice(space, size=K, replace=False, p=p)[0] for _ in range(n)], minlength=space)
    assert 0.5 * np.abs(ours - theirs / n).sum() < 0.03
    assert 0.5 * np.abs(ours - p).sum() < 0.03


def test_mqar_an_example_depends_only_on_its_seed():
    kwargs = dict(vocab_size=V, seq_len=T, num_kv_pairs=K, power_a=0.01)
    a = mqar.mqar_examples(np.arange(100), **kwargs)
    b = mqar.mqar_examples(np.arange(40, 60), **kwargs)
    assert torch.equal(a[0][40:60], b[0]) and torch.equal(a[1][40:60], b[1])
    assert torch.equal(a[0], mqar.mqar_examples(np.arange(100), **kwargs)[0])


def test_mqar_train_and_test_are_disjoint(tmp_path):
    task = MQAR(cache_dir=tmp_path, vocab_size=V, seq_len=T, num_kv_pairs=K, train_examples=3000, test_examples=500)
    assert mqar.TRAIN_SEED_START + 3000 <= mqar.TEST_SEED_START
    train_rows = {row.numpy().tobytes() for row in task.train_inputs}
    test_inputs, _ = task.test[K]
    assert not any(row.numpy().tobytes() in train_rows for row in test_inputs)


def test_mqar_cache_hit_is_identical_and_a_config_change_misses(tmp_path, monkeypatch):
    first = MQAR(cache_dir=tmp_path, vocab_size=V, seq_len=T, num_kv_pairs=K, train_examples=300, test_examples=50)
    assert len(list((tmp_path / "mqar").glob("*.pt"))) == 2

    def fail(*args, **kwargs):
        raise AssertionError("generated although cached")

    monkeypatch.setattr(mqar, "mqar_examples", fail)
    again = MQAR(cache_dir=tmp_path, vocab_size=V, seq_len=T, num_kv_pairs=K, train_examples=300, test_examples=50)
    assert torch.equal(first.train_inputs, again.train_inputs) and torch.equal(first.train_targets, again.train_targets)
    assert torch.equal(first.test[K][0], again.test[K][0])
    with pytest.raises(AssertionError, match="generated"):
        MQAR(
            cache_dir=tmp_path,
            vocab_size=V,
            seq_len=T,
            num_kv_pairs=K,
            train_examples=300,
            test_examples=50,
            power_a=0.5,
        )


def test_mqar_evaluate_slices(tmp_path):
    task = build_task("mqar", tmp_path, vocab_size=V, seq_len=T, num_kv_pairs=4, test_examples=64, train_examples=64,
                      test_num_kv_pairs=[4, 8])  # fmt: skip
    answers = {x.numpy().tobytes(): y for kv in (4, 8) for x, y in zip(*task.test[kv], strict=True)}
    perfect = task.evaluate(one_hot_predictor(answers, V), batch_size=16)
    assert perfect["test_accuracy"] == perfect["test_accuracy_kv4"] == perfect["test_accuracy_kv8"] == 1.0
    uniform = task.evaluate(uniform_predictor(V), batch_size=16)
    assert uniform["test_accuracy"] == 0.0  # argmax of a tie is 0, never a value
    assert uniform["test_loss"] == pytest.approx(math.log(V))


def test_mqar_train_batches_are_deterministic_resumable_epochs(tmp_path):
    task = MQAR(cache_dir=tmp_path, vocab_size=V, seq_len=T, num_kv_pairs=K, train_examples=100, test_examples=10)
    stream = take(task.train_batches(8, seed=3), 30)
    resumed = take(task.train_batches(8, seed=3, start_step=17), 13)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(stream[17:], resumed, strict=True))
    assert not torch.equal(stream[0][0], next(task.train_batches(8, seed=4))[0])
    epoch = torch.cat([x for x, _ in take(task.train_batches(10, seed=3), 10)])
    assert len({row.numpy().tobytes() for row in epoch}) == 100, "one epoch visits every example once"


# --- text corpora and the BPE ----------------------------------------------------------------

WORD_LIST = [
    *("the", "king", "queen", "lord", "lady", "night", "day", "sword", "crown", "love", "death", "honour"),
    *("grace", "heart", "blood", "fair", "speak", "come", "go", "stay", "hath", "doth", "thou", "thee"),
    *("thy", "mine", "noble", "gentle", "sweet", "bitter", "cold", "warm", "light", "dark"),
]


def write_text_folder(root: Path, files: int = 12, sentences: int = 300) -> Path:
    """ASCII pseudo-text in ``files`` files (deterministic)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = [" ".join(rng.choice(WORD_LIST, size=rng.integers(4, 12))).capitalize() + "." for _ in range(sentences)]
        (root / f"doc{f:02d}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory) -> Path:
    return write_text_folder(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_shakespeare_split_is_by_play():
    c = corpus.load_corpus("shakespeare")
    train, held = {d.name for d in c.train}, {d.name for d in c.held_out}
    assert len(train) + len(held) == 42 and not train & held
    assert held == set(corpus.SHAKESPEARE_HELD_OUT)
    assert not {d.text for d in c.train} & {d.text for d in c.held_out}


def test_local_splits_are_by_file_or_by_part(text_folder, tmp_path):
    c = corpus.load_corpus(str(text_folder))
    assert [d.name for d in c.held_out] == ["doc11.txt"]
    assert len(c.train) == 11 and "doc11.txt" not in {d.name for d in c.train}
    single = corpus.load_corpus(str(text_folder / "doc00.txt"))
    assert [d.name for d in single.held_out] == ["doc00.txt#9"] and len(single.train) == 9
    assert "".join(d.text for d in (*single.train, *single.held_out)) == (text_folder / "doc00.txt").read_text()


def test_hf_source_uses_the_validation_split(monkeypatch):
    class Split:
        def __init__(self, texts):
            self.column_names, self.texts = ["text"], texts

        def __getitem__(self, column):
            return self.texts

    calls = []

    def load_dataset(name, config, cache_dir):
        calls.append((name, config, cache_dir))
        return fake.DatasetDict(train=Split(["a b", "c d", " "]), validation=Split(["e f"]))

    fake = types.ModuleType("datasets")
    fake.DatasetDict, fake.load_dataset = type("DatasetDict", (dict,), {}), load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    c = corpus.load_corpus("hf:some/dataset", {"config": "small"}, Path("/cache"))
    assert [d.text for d in c.train] == ["a b", "c d"] and [d.text for d in c.held_out] == ["e f"]
    assert calls == [("some/dataset", "small", "/cache/datasets")]
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'miras\[hf\]'"):
        corpus.load_corpus("hf:some/dataset")


def test_bpe_is_cached(text_folder, tmp_path, monkeypatch):
    texts = [d.text for d in corpus.load_corpus(str(text_folder)).train]
    first = tokenizer.load_or_train_bpe(texts, 300, tmp_path)
    monkeypatch.setattr(tokenizer, "train_bpe", lambda *a: pytest.fail("trained although cached"))
    second = tokenizer.load_or_train_bpe(texts, 300, tmp_path)
    assert first.key == second.key and first.encode("the king") == second.encode("the king")
    assert tokenizer.bpe_path(texts, 320, tmp_path) != tokenizer.bpe_path(texts, 300, tmp_path)
    assert tokenizer.bpe_path(texts[1:], 300, tmp_path) != tokenizer.bpe_path(texts, 300, tmp_path)


def test_byte_lengths_count_utf8_bytes(text_folder, cache):
    bpe = tokenizer.load_or_train_bpe([d.text for d in corpus.load_corpus(str(text_folder)).train], 300, cache)
    text = "Thé kïng — 王 says ✓ hello\n"
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert bpe.byte_lengths()[ids].sum() == len(text.encode("utf-8"))


# --- language modelling -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm(text_folder, cache) -> TextLM:
    return build_task(LmTask(source=str(text_folder), vocab_size=300, seq_len=32), cache, eval_windows=20)


def test_lm_bits_per_byte_of_a_uniform_predictor(lm):
    metrics = lm.evaluate(uniform_predictor(lm.vocab_size), batch_size=8)
    scored = lm.val_targets[lm.val_targets != IGNORE_INDEX].tolist()
    n_bytes = sum(len(lm.bpe.decode([t]).encode("utf-8")) for t in scored)  # ASCII text: each token decodes whole
    assert metrics["val_loss"] == pytest.approx(math.log(lm.vocab_size))
    assert metrics["val_perplexity"] == pytest.approx(lm.vocab_size)
    assert metrics["val_bits_per_byte"] == pytest.approx(math.log2(lm.vocab_size) * len(scored) / n_bytes)
    assert lm.val_inputs.shape == (20, 32)


def test_lm_train_batches_are_deterministic_and_resumable(lm):
    stream = take(lm.train_batches(4, seed=1), 6)
    resumed = take(lm.train_batches(4, seed=1, start_step=4), 2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(stream[4:], resumed, strict=True))
    inputs, targets = stream[0]
    assert inputs.shape == targets.shape == (4, 32) and torch.equal(inputs[:, 1:], targets[:, :-1])
    assert not torch.equal(inputs, next(lm.train_batches(4, seed=2))[0])


def test_lm_validation_comes_from_held_out_documents(lm, text_folder):
    held_text = (text_folder / "doc11.txt").read_text()
    assert all(lm.bpe.decode(row.tolist()).strip() in held_text for row in lm.val_inputs)


def test_lm_token_budget_truncates_training(text_folder, cache):
    task = TextLM(cache_dir=cache, source=str(text_folder), vocab_size=300, seq_len=32, token_budget=500)
    assert len(task.train_tokens) == 500


# --- needle -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def needle(text_folder, cache) -> Needle:
    config = NeedleTask(context_lengths=[128, 160], examples_per_length=5, haystack=str(text_folder))
    return build_task(config, cache, vocab_size=300)


def find(haystack: list[int], needle: list[int]) -> list[int]:
    return [i for i in range(len(haystack) - len(needle) + 1) if haystack[i : i + len(needle)] == needle]


@pytest.mark.parametrize("kind", ["passkey", "number", "word"])
@pytest.mark.parametrize("depth", [0.0, 0.3, 1.0])
def test_needle_once_at_its_depth_and_targets_are_the_needle(needle, kind, depth):
    inputs, targets = needle.example(kind, 160, depth, np.random.default_rng(7), "test")
    assert inputs.shape == targets.shape == (160,)
    answer = targets[targets != IGNORE_INDEX]
    assert torch.equal(targets[-len(answer) :], answer), "targets are the last positions"
    value = needle.bpe.decode(answer.tolist()).removeprefix(" ")
    assert answer.tolist() == needle.bpe.encode(" " + value)
    assert value in WORDS if kind == "word" else value.isdigit() and len(value) == (5 if kind == "passkey" else 7)
    sentence = needle.bpe.encode(TEMPLATES[kind].needle.format(value=value))
    (position,) = find(inputs.tolist(), sentence)
    question = needle.bpe.encode(TEMPLATES[kind].question)
    n_hay = 160 + 1 - len(sentence) - len(question) - len(answer)
    assert position == round(depth * n_hay)


def test_needle_evaluate_and_metric_names(needle):
    answers = {
        x.numpy().tobytes(): y for x, y in (pair for key in needle.test for pair in zip(*needle.test[key], strict=True))
    }
    perfect = needle.evaluate(one_hot_predictor(answers, needle.vocab_size), batch_size=4)
    names = {"test_accuracy"} | {f"test_accuracy_{k}" for k in ("passkey", "number", "word", 128, 160)}
    names |= {f"test_accuracy_{k}_{n}" for k in ("passkey", "number", "word") for n in (128, 160)}
    assert set(perfect) == names and all(v == 1.0 for v in perfect.values())
    assert needle.evaluate(uniform_predictor(needle.vocab_size), batch_size=4)["test_accuracy"] == 0.0


def test_needle_train_batches_are_deterministic_and_resumable(needle):
    stream = take(needle.train_batches(4, seed=0), 3)
    resumed = next(needle.train_batches(4, seed=0, start_step=2))
    assert torch.equal(stream[2][0], resumed[0]) and torch.equal(stream[2][1], resumed[1])
    assert stream[0][0].shape == (4, needle.seq_len) and needle.seq_len == 160
    assert ((stream[0][1] != IGNORE_INDEX).sum(1) > 0).all()


def test_needle_too_short_context_is_a_clear_error(text_folder, cache):
    with pytest.raises(ValueError, match="too short"):
        Needle(cache_dir=cache, context_lengths=[16], haystack=str(text_folder), vocab_size=300)


# --- build_task -------------------------------------------------------------------------------


def test_build_task_accepts_schema_models_mappings_and_rejects_unknown_options(tmp_path):
    small = dict(vocab_size=V, seq_len=T, train_examples=10, test_examples=10)
    task = build_task(MqarTask(**small), tmp_path)
    assert isinstance(task, MQAR) and task.vocab_size == V and task.seq_len == T
    assert isinstance(build_task({"name": "mqar", **small}, tmp_path), MQAR)
    with pytest.raises(TypeError, match="no option colour"):
        build_task("mqar", tmp_path, colour="red")
    with pytest.raises(ValueError, match="unknown task"):
        build_task("chess", tmp_path)
