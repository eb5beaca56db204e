"""Write docs/declaration.md, the reference of stacks/<dataset>.yaml (tests/test_docs.py fails while it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.reports.docs import DECLARATION_FILE, render_declaration_reference  # noqa: E402

if __name__ == "__main__":
    (ROOT / DECLARATION_FILE).write_text(render_declaration_reference(), encoding="utf-8")
