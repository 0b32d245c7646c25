"""Suite-wide setup: Triton kernels run in Triton's interpreter on the CPU.

``TRITON_INTERPRET`` is read when ``miras.ops.kernels`` is first imported, so it is set here,
before any test module loads; an explicit value in the environment is kept.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
