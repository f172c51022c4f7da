"""The examples in the public docstrings run and print what they say (numpydoc Examples
sections of train, History, Network, RNN, save/load)."""
import doctest
import importlib

import pytest

MODULES = ["fastbp.train", "fastbp.driver", "fastbp.network", "fastbp.rnn", "fastbp.io"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["train", "Network", "RNN", "History", "save", "load"])
def test_public_docstrings_have_numpydoc_sections(name):
    import fastbp
    doc = getattr(fastbp, name).__doc__
    assert "Examples\n    --------" in doc or "Examples\n--------" in doc
    assert any(f"{section}\n    {'-' * len(section)}" in doc
               for section in ("Parameters", "Attributes"))
