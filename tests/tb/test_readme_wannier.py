"""The README's "Bring your own Hamiltonian" example runs as printed, and its numbers hold."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_wannier_example_runs(tmp_path, monkeypatch):
    section = README.read_text().split("## Bring your own Hamiltonian", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 12
    monkeypatch.chdir(tmp_path)  # the example writes its files into the working directory
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert (tmp_path / "graphene_hr.dat").exists() and (tmp_path / "graphene.win").exists()
    T, t = ns["T"], ns["t"]
    assert T.shape == (41,) and float(T.min()) > 0  # graphene conducts at every energy once k is summed
    assert torch.isfinite(t.grad) and abs(float(t.grad)) > 1e-3
