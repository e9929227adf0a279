"""A committed results folder is derived from its per-run data alone: `make results NO_RUN=1 OUT=DIR`, with no
tracking store, regenerates every CSV, Markdown and LaTeX file of it byte for byte."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from suite import results

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = ROOT / "tests" / "data" / "make_reference_fixture.py"
_spec = importlib.util.spec_from_file_location("make_reference_fixture", _SCRIPT)
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)

#: the results folder checked, and the generator arguments it was made with
FOLDER, ARGS = _fixture.FOLDER, _fixture.ARGS


def _derived(folder: Path) -> list[str]:
    """The text files derived from the per-run data: the folder's and its gallery's (figures are drawn from the
    same numbers, which the gallery's CSVs hold)."""
    return sorted(p.relative_to(folder).as_posix() for p in [*folder.iterdir(), *folder.glob("gallery/*")]
                  if p.suffix in (".csv", ".md", ".tex", ".txt"))


def test_results_folder_regenerates_byte_for_byte_without_a_store(tmp_path):
    out = tmp_path / "regenerated"
    assert results.main(["--no-run", "--runs", str(FOLDER / "runs"), "--out", str(out), "--results",
                         str(tmp_path / "no-store"), *ARGS]) == 0
    assert not (tmp_path / "no-store").exists()  # no store was read or made
    committed = _derived(FOLDER)
    assert {"README.md", "classic_control.csv", "sensitivity.csv", "claim.csv", "tuned.csv",
            "reproduce-cartpole_dqn_ablation.md"} <= set(committed)
    assert _derived(out) == committed
    for name in committed:
        assert (out / name).read_bytes() == (FOLDER / name).read_bytes(), f"{name} differs: regenerate the folder"
