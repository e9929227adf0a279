"""Write tests/data/reference/: a tiny reference-results folder made by `make results` itself (classic, sensitivity,
tuned and the CartPole ablation at 1,500 env steps x 3 seeds), for the tests that need shipped per-run data
(regeneration byte for byte, `analyze --reference`, `seeds`, `verify`) without the real docs/results.

From the repository root: ``.venv/bin/python tests/data/make_reference_fixture.py`` trains it afresh (tens of
minutes on a busy 2-core machine); with ``--no-run`` it only derives the files again from the per-run data already
there (after a change to what the generator writes). The figures are not kept: the tests compare the CSV, Markdown,
LaTeX and caption files (the gallery's too), and the README lists figures by name, the same with or without them.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "reference"
#: the generator's arguments for the fixture; regenerating it with --no-run takes the same ones
ARGS = ["--part", "classic,sensitivity,tuned,cartpole", "--steps", "1500", "--seeds", "0,1,2", "--agents",
        "dqn,agt2-dqn", "--envs", "CartPole-v1,Acrobot-v1", "--reps", "200", "--quiet"]


def main(argv: list[str]) -> int:
    from suite import results

    with tempfile.TemporaryDirectory(prefix="targetbench-fixture-") as tmp:
        if "--no-run" in argv:
            code = results.main(["--no-run", "--runs", str(FOLDER / "runs"), "--out", str(FOLDER), "--results", tmp,
                                 *ARGS])
        else:
            shutil.rmtree(FOLDER, ignore_errors=True)
            code = results.main(["--out", str(FOLDER), "--results", tmp, *ARGS])
    for picture in [*FOLDER.glob("*.png"), *FOLDER.glob("gallery/*.png"), *FOLDER.glob("gallery/*.pdf")]:
        picture.unlink()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
