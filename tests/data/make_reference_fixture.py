"""Write tests/data/reference/: a tiny reference-results folder made by `make results` itself (every part, at a
budget of a few seconds per group), for the tests that need shipped per-run data (regeneration byte for byte,
`analyze --reference`, `seeds`) without the real docs/results.

Run from the repository root after changing what the generator writes: ``.venv/bin/python
tests/data/make_reference_fixture.py`` (a few minutes on 2 cores). The figures are not kept (the tests compare the
CSV, Markdown and LaTeX files; the README lists figures by name, the same with or without them here).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "reference"
#: the generator's arguments for the fixture; regenerating it with --no-run takes the same ones
ARGS = ["--steps", "1500", "--seeds", "0,1,2", "--agents", "dqn,agt2-dqn", "--envs", "CartPole-v1,Acrobot-v1",
        "--reps", "200", "--quiet"]


def main() -> int:
    from suite import results

    shutil.rmtree(FOLDER, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="targetbench-fixture-") as tmp:
        code = results.main(["--out", str(FOLDER), "--results", tmp, *ARGS])
    for png in FOLDER.glob("*.png"):
        png.unlink()
    return code


if __name__ == "__main__":
    sys.exit(main())
