"""Triton kernels of the hot paths; import triton lazily (only these modules import it)."""
