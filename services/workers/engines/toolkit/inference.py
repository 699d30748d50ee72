"""How the engines run their models on a CPU: how many threads one model may use, and onnxruntime sessions
built with that bound (onnxruntime's default is a thread per core for each session)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MAX_THREADS = 4


def model_threads() -> int:
    """Threads for one model's inference: the cores, at most MAX_THREADS."""
    return min(MAX_THREADS, os.cpu_count() or 1)


def onnx_session(model: Path) -> Any:
    """A CPU onnxruntime session of `model`, its operators run one after another on model_threads() threads."""
    import onnxruntime  # noqa: PLC0415 - only engines that speak with a neural voice load it

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = model_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
