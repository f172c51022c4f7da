"""The README's examples run as pasted (issue 16, item 12): every ```python block, in a
fresh namespace, and the sweep grid it shows is a valid grid; its commands name only
commands and options that exist."""
import re
import shlex
import textwrap
import warnings
from pathlib import Path

import pytest

import fastbp
from fastbp import cli, sweep

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)
PYTHON = [textwrap.dedent(code) for lang, code in BLOCKS if lang == "python"]


def test_the_readme_has_examples():
    assert len(PYTHON) >= 3


@pytest.mark.parametrize("code", PYTHON, ids=[f"block{i}" for i in range(len(PYTHON))])
def test_python_block_runs_as_pasted(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a ConvergenceWarning of a short fit
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_the_toml_grid_is_a_valid_sweep():
    (grid,) = [code for lang, code in BLOCKS if lang == "toml"]
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    checked = sweep.check_config(tomllib.loads(grid))
    assert len(sweep.expand(checked)) > 1


def test_fastbp_commands_in_the_readme_parse():
    """Every `fastbp ...` line of the README's shell blocks names a command and options the
    parser knows (the files they name are the reader's)."""
    parser = cli.build_parser()
    lines = [line.split("#")[0].strip() for lang, code in BLOCKS if lang == ""
             for line in code.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("fastbp ")]
    assert len(commands) >= 3
    for argv in commands:
        if argv[:1] in (["--help"], ["sweep"]):
            continue
        parser.parse_args(argv)  # SystemExit (a usage error) fails the test
    assert fastbp.__version__
