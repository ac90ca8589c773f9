"""Python 3.10 (pyproject: requires-python >= 3.10) has no tomllib: specs are read with tomli there."""

import importlib.util
import sys

import pytest

import invdesign.campaign.spec as spec_module


def test_spec_module_reads_toml_without_tomllib(monkeypatch, tmp_path):
    pytest.importorskip("tomli")
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` fails as on 3.10
    loaded = importlib.util.spec_from_file_location("spec_py310", spec_module.__file__)
    module = importlib.util.module_from_spec(loaded)
    monkeypatch.setitem(sys.modules, "spec_py310", module)  # dataclasses look their module up
    loaded.loader.exec_module(module)
    assert module.tomllib.__name__ == "tomli"
    path = tmp_path / "s.toml"
    path.write_text('seeds = [0]\n[budget]\nmax_evals = 3\n[[problems]]\nname = "toy/quadratic"\n'
                    '[[optimizers]]\nname = "random"\n', encoding="utf-8")
    assert len(module.load_spec(path).units()) == 1
    path.write_text("seeds = [", encoding="utf-8")
    with pytest.raises(module.SpecError, match="TOML syntax error"):
        module.load_spec(path)


def test_pyproject_declares_the_fallback():
    from pathlib import Path

    pyproject = Path(spec_module.__file__).resolve().parents[2] / "pyproject.toml"
    assert "tomli>=1.1; python_version < '3.11'" in pyproject.read_text(encoding="utf-8")
