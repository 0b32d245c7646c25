"""What the benchmarks record about the process they ran in."""

from __future__ import annotations

from pathlib import Path

import pytest

from miras.provenance import memory_allocator

GLIBC_ONLY = """\
7f00a0000000-7f00a0200000 r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6
7f00a1000000-7f00a1100000 r-xp 00000000 08:01 456 /work/.venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so
"""


@pytest.mark.parametrize(
    ("library", "name"),
    [("libjemalloc.so.2", "jemalloc"), ("libtcmalloc_minimal.so.4", "tcmalloc"), ("libmimalloc.so.2", "mimalloc")],
)
def test_a_preloaded_allocator_is_named(tmp_path: Path, library: str, name: str) -> None:
    maps = tmp_path / "maps"
    maps.write_text(GLIBC_ONLY + f"7f00a2000000-7f00a2100000 r-xp 00000000 08:01 789 /usr/lib/{library}\n")
    assert memory_allocator(maps) == name


def test_the_c_library_malloc_is_system(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(GLIBC_ONLY)
    assert memory_allocator(maps) == "system"
    assert memory_allocator(tmp_path / "missing") == "system"
