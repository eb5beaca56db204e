"""Real-world schemas deployed by Mozilla's pipeline: all valid but the one above the column limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.model.schema import parse_schema

CORPUS = Path(__file__).resolve().parent / "corpus" / "mozilla-pipeline-schemas"
OVER_THE_LIMIT = "schemas/firefox-desktop/metrics/metrics.1.bq"
SCHEMAS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("**/*.bq"))


def test_the_corpus_is_there() -> None:
    assert len(SCHEMAS) > 100
    assert OVER_THE_LIMIT in SCHEMAS


@pytest.mark.parametrize("name", [s for s in SCHEMAS if s != OVER_THE_LIMIT])
def test_real_schema_is_accepted(name: str) -> None:
    _, problems = parse_schema(json.loads((CORPUS / name).read_text()), name)
    assert [str(p) for p in problems] == []


def test_the_schema_above_the_column_limit_is_refused_with_the_count_named() -> None:
    _, problems = parse_schema(json.loads((CORPUS / OVER_THE_LIMIT).read_text()), OVER_THE_LIMIT)
    assert [str(p) for p in problems] == [
        f"{OVER_THE_LIMIT}:(top): 10,203 columns, counting leaf fields at every depth (nested and repeated "
        "included, a RECORD counted as its fields); BigQuery allows at most 10,000 per table; split the table "
        "or drop fields"
    ]
