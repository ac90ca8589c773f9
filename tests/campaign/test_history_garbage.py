"""A garbage or non-UTF-8 last history line (a crash mid-write) is dropped and its evaluation redone: the
resumed run matches the uninterrupted one (was: UnicodeDecodeError crashing the whole resume); garbage
in the middle of a history is a StorageError naming the line."""

import pytest

from invdesign.campaign import resume_campaign, run_campaign
from invdesign.campaign.storage import CHECKPOINT_FILE, COMPLETED_FILE, HISTORY_FILE, StorageError, read_history
from tests.campaign.helpers import small_spec

GARBAGE = (b"\xff\xfe\x00 not utf-8\n", b'{"n": 3, "value": \n', b"[1, 2]\n")


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_last_line_is_dropped_and_redone(tmp_path, garbage):
    spec = small_spec(problems=[{"name": "toy/quadratic", "label": "quad"}], optimizers=["random"], seeds=[0],
                      budget={"max_evals": 6})
    reference = run_campaign(spec, tmp_path / "ref", progress=False).rows
    run_campaign(spec, tmp_path / "c", progress=False)
    rdir = tmp_path / "c" / "runs" / "quad__random__s0"
    lines = (rdir / HISTORY_FILE).read_bytes().split(b"\n")
    (rdir / HISTORY_FILE).write_bytes(b"\n".join(lines[:3]) + b"\n" + garbage)  # 3 good lines, then garbage
    (rdir / COMPLETED_FILE).unlink()
    (rdir / CHECKPOINT_FILE).unlink()
    records, valid = read_history(rdir / HISTORY_FILE)
    assert len(records) == 3 and valid == len(b"\n".join(lines[:3]) + b"\n")
    resumed = resume_campaign(tmp_path / "c", progress=False).rows
    drop = ("wall_time_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
           [{k: v for k, v in r.items() if k not in drop} for r in reference]
    assert [r["n"] for r in read_history(rdir / HISTORY_FILE)[0]] == list(range(6))


def test_garbage_inside_the_history_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b'{"n": 0}\n\xff\xfe\n{"n": 2}\n')
    with pytest.raises(StorageError, match="line 2 is not valid JSON"):
        read_history(path)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00"])
def test_unreadable_lease_is_taken_over(tmp_path, content):
    """A lease.json that is not JSON (written atomically, so damaged from outside) names no live holder:
    resume takes the run over (was: every resume failed, the cause only in campaign.log)."""
    spec = small_spec(problems=[{"name": "toy/quadratic", "label": "quad"}], optimizers=["random"], seeds=[0],
                      budget={"max_evals": 4})
    run_campaign(spec, tmp_path / "c", progress=False)
    rdir = tmp_path / "c" / "runs" / "quad__random__s0"
    (rdir / COMPLETED_FILE).unlink()
    (rdir / "lease.json").write_bytes(content)
    rows = resume_campaign(tmp_path / "c", progress=False).rows
    assert rows[0]["status"] == "completed" and rows[0]["evaluations"] == 4
