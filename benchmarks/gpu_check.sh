#!/usr/bin/env bash
# The GPU checks of issue 7, in one run on a CUDA machine (e.g. the device tool):
#   1. the Triton kernels against the fp32 chunked scan on fla's shape grid (fp32, bf16, fp16);
#   2. `miras bench` at fla's shape (B4 H16 D128 bf16, T 1024-4096) for every implementation and
#      fla's chunk_gated_delta_rule, and at B4 T1024 H4 D64 fp32 with titans-pytorch.
# Results go to $OUT (default: runs/gpu): pytest log, bench JSON and Markdown sections.
set -uo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
PY=${PY:-python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
$PY -m pytest -q -m gpu tests/ops/test_kernels_gpu.py 2>&1 | tee "$OUT/pytest.log" | tail -20
$PY -m miras.cli bench --device cuda --impls chunked delta compiled triton fla_gated_delta \
    --baseline fla_gated_delta --max-seconds 20 --repeats 5 \
    --json "$OUT/bench_cuda.json" --markdown "$OUT/benchmarks.md" --section cuda | tail -40
$PY -m miras.cli bench --device cuda --presets titans --impls chunked compiled triton titans_pytorch \
    --dtype float32 --heads 4 --dim 64 --lengths 1024 --baseline titans_pytorch --max-seconds 30 \
    --json "$OUT/bench_cuda_titans.json" --markdown "$OUT/benchmarks.md" --section cuda-titans-pytorch | tail -20
