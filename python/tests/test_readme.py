"""The README's Python example runs as written, from the repository root."""
import re

from conftest import SOURCE_DIR


def test_readme_python_example_runs(monkeypatch, capsys):
    readme = (SOURCE_DIR / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(SOURCE_DIR)
    exec(compile(code, "README.md (Python example)", "exec"), {})
    assert "tensor(" in capsys.readouterr().out
