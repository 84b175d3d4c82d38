import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402


@pytest.fixture
def write_csv(tmp_path, monkeypatch):
    """write_csv(text, name="data.csv") -> relative path of a file holding `text` (or bytes); cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)

    def write(content, name="data.csv"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path.relative_to(tmp_path)

    return write
