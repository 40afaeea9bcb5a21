"""The quickstart passes ``mypy --strict`` with the pydantic plugin, as docs/quickstart.md says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"


def test_the_quickstart_passes_mypy_strict_with_the_pydantic_plugin(tmp_path: Path) -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0]
    settings = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)[0]
    assert 'plugins = ["pydantic.mypy"]' in settings
    (tmp_path / "quickstart.py").write_text(code, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(settings, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "quickstart.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 1 source file" in checked.stdout
