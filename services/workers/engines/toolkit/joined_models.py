"""Join every split model whose wheels are installed into the model cache, ahead of a first job.

The image build runs it (then drops the part wheels); by hand:
`python -m services.workers.engines.toolkit.joined_models`.
"""

from __future__ import annotations

import importlib.util
import sys

from services.workers.engines.toolkit import kokoro, whisper_models


def main() -> int:
    for name, source in whisper_models.MODELS.items():
        if isinstance(source, whisper_models.SplitModel) and importlib.util.find_spec(source.packages[0]):
            print(f"whisper {name}: {whisper_models.model_dir(name)}", flush=True)
    if importlib.util.find_spec(kokoro.PACKAGE):
        print(f"kokoro: {kokoro.model_path()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
