"""The README's two set-up commands are the ones CI and newcomers run."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [m.strip() for m in re.findall(r"^    (\S.*)$", setup, flags=re.M)]


def test_readme_has_exactly_two_setup_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith("intsim train")
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    test_cmd = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    # CI adds only quiet flags to pip; the command is otherwise the README's.
    assert test_cmd.replace("pip install", "python -m pip install -q") in ci
