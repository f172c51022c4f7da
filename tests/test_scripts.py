"""The scripts in scripts/ run and print what the README quotes from them."""
import importlib.util
import pathlib

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_case_update_floor_prints_one_row_per_network(capsys):
    floor = load_script("case_update_floor")
    floor.main(["--reps", "20", "--repeats", "1", "--other-us", "100"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(floor.NETWORKS)  # header + one per network
    assert "7,510" in rows[1] and "3,201" in rows[2] and "6,337" in rows[3]  # weights + biases
    for row in rows[1:]:
        floor_us, ratio = row.strip("| ").split(" | ")[-2:]
        floor_us, ratio = float(floor_us), float(ratio.rstrip("x"))
        # the ratio is 100 us over the floor, as far as the printed roundings allow
        assert floor_us > 0
        assert 100 / (floor_us + 0.005) - 1 <= ratio <= 100 / max(floor_us - 0.005, 1e-9) + 1


def test_case_update_floor_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        load_script("case_update_floor").main(["--reps", "0"])
