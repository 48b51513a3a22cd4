"""pyproject.toml and environment.yml name the same exact versions."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(reqs):
    out = {}
    for r in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", r)
        assert m, f"not an exact pin: {r!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def pyproject_pins():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return _pins(reqs)


def environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    return _pins([r for r in pip if not r.startswith("-e")]), python


def test_every_pyproject_requirement_is_an_exact_pin():
    assert pyproject_pins()  # _pins asserts each is "name==version"


def test_environment_yml_names_the_same_versions():
    env, python = environment_pins()
    assert env == pyproject_pins()
    req = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == "python=" + req.removeprefix(">="), (python, req)


def test_torch_is_pinned_exactly():
    # a looser torch requirement pulls a multi-GB CUDA build instead of the CPU wheel
    assert pyproject_pins()["torch"] == "2.13.0"
