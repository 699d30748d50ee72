"""Write the NATS users and permissions into deploy/k8s/base/nats.yaml (ConfigMap key authorization.conf).

The block comes from services/common/nats_permissions.py, which derives it from services/common/messaging.py;
tests/deploy/test_consistency.py fails while the manifest differs. Run after changing a stream, subject,
consumer or bucket:  .venv/bin/python tools/render_nats_authorization.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.nats_permissions import render_for_environment  # noqa: E402

MANIFEST = ROOT / "deploy" / "k8s" / "base" / "nats.yaml"
KEY = "  authorization.conf: |"
INDENT = "    "


def rewrite(text: str, block: str) -> str:
    """Replace the literal block under KEY (its lines indented by INDENT) with `block`."""
    lines = text.splitlines()
    start = lines.index(KEY) + 1
    end = start
    while end < len(lines) and (lines[end].startswith(INDENT) or not lines[end].strip()):
        end += 1
    body = [INDENT + line if line else "" for line in block.splitlines()]
    return "\n".join([*lines[:start], *body, *lines[end:]]) + "\n"


def main() -> None:
    MANIFEST.write_text(rewrite(MANIFEST.read_text(), render_for_environment()))
    print(f"wrote the NATS authorization block into {MANIFEST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
