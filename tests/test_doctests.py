"""The examples in the docstrings run and print what they say."""
import doctest
import importlib

import pytest

MODULES = ["claims", "params", "losses", "network", "metrics", "dynamics", "plots", "data", "margin", "alexnet"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"gdalign.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples failed in gdalign.{name}"
