"""Every Python example in README.md and docs/ runs as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PG_VARIABLE = "AGENT_POOL_STORE_EXAMPLE_PG"
"""An example that names this variable runs against the test run's PostgreSQL database."""
EXAMPLES = [
    pytest.param(
        page,
        index,
        code,
        id=f"{page.name}-{index}",
        marks=pytest.mark.postgresql if PG_VARIABLE in code else (),
    )
    for page in PAGES
    for index, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")))
]


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(("page", "index", "code"), EXAMPLES)
def test_example_runs(
    page: Path,
    index: int,
    code: str,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)
    if PG_VARIABLE in code:
        url = request.getfixturevalue("pg_database")
        monkeypatch.setenv(PG_VARIABLE, url.render_as_string(hide_password=False))
    script = tmp_path / f"{page.stem}_{index}.py"
    script.write_text(code, encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")
