"""The package's layers point down (pyproject.toml's import-linter contract): no module
imports one above it, so no import circle can come back unnoticed."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(*args, cwd=ROOT):
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)


def test_the_layers_contract_is_kept():
    result = lint_imports("--config", str(ROOT / "pyproject.toml"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_the_contract_catches_an_upward_import(tmp_path):
    """The same contract on a copy of the package in which the kernels import the training
    loop: broken, naming the import."""
    shutil.copytree(ROOT / "fastbp", tmp_path / "fastbp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    codes = tmp_path / "fastbp" / "_kernels" / "codes.py"
    codes.write_text(codes.read_text() + "\nfrom ..train import train  # noqa\n")
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                             "from importlinter.cli import lint_imports_command; "
                             "lint_imports_command()", "--no-cache"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "fastbp._kernels is not allowed to import fastbp.train" in result.stdout
