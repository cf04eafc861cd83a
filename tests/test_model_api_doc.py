"""docs/architecture.md's worked example of a model in Python runs as written."""
import pathlib
import re

from intsim.models import MODELS

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _block(tag):
    m = re.search(rf"<!-- worked-example: {tag}[^>]*-->\s*```python\n(.*?)```", DOC.read_text(),
                  re.S)
    assert m, f"no worked example {tag} in {DOC}"
    return m.group(1)


def test_the_python_model_example_builds_trains_and_registers():
    code = _block("python-model")
    assert len(code.strip().splitlines()) <= 45
    try:
        scope = {}
        exec(compile(code, str(DOC), "exec"), scope)
        assert "tiny_transformer" in MODELS
        assert scope["logits"].shape == (2, 6)
    finally:
        MODELS.pop("tiny_transformer", None)


def test_the_model_file_example_is_a_valid_file(tmp_path):
    from intsim.models import read_model_file
    m = re.search(r"### A model in a file.*?```toml\n(.*?)```", DOC.read_text(), re.S)
    path = tmp_path / "res_mlp.toml"
    path.write_text(m.group(1))
    mf = read_model_file(path)
    assert (mf.name, mf.input, mf.feature_dim) == ("res_mlp", (561,), 128)
