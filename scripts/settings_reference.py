"""Write docs/settings.md, the reference of every stack setting (infra/reports/settingsdoc.py renders it from
infra/model/settings.py `StackSettings` and Pulumi.yaml). tests/test_docs.py fails while the committed file is stale.

Usage: python scripts/settings_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from infra.model.documents import write_bytes  # noqa: E402 - after the repository is on the path
from infra.reports.settingsdoc import SETTINGS_FILE, render_settings_reference  # noqa: E402


def main() -> None:
    write_bytes(REPO_ROOT / SETTINGS_FILE, render_settings_reference(REPO_ROOT).encode("utf-8"))
    print(f"wrote {SETTINGS_FILE}")


if __name__ == "__main__":
    main()
