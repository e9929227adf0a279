"""Add the trial hashes of new built-in suites or new trials to trial_hashes.json; never change a pinned one.

Run after adding a suite or a variant: ``.venv/bin/python tests/suite/data/pin_trial_hashes.py``. A pinned
trial whose hash changed is reported and the file is left as it is: stored runs would stop matching, so that
change needs a deliberate decision (edit the file by hand and say why in the commit)."""
import json
import sys
from pathlib import Path

from suite.scheduler.matrix import expand
from suite.scheduler.spec import builtin_suites, load_suite

PATH = Path(__file__).parent / "trial_hashes.json"


def main() -> int:
    pinned = json.loads(PATH.read_text())
    changed, added = [], 0
    for name in builtin_suites():
        _, trials = expand(load_suite(name))
        have = pinned.setdefault(name, {})
        for t in trials:
            key = f"{t.variant}|{t.agent}|{t.env}|{t.seed}"
            if key in have and have[key] != t.trial_hash:
                changed.append(f"{name}: {key}")
            elif key not in have:
                have[key], added = t.trial_hash, added + 1
    if changed:
        print(f"{len(changed)} pinned trial hashes changed (file not written), first: {changed[0]}", file=sys.stderr)
        return 1
    PATH.write_text(json.dumps(pinned, indent=0, sort_keys=True))
    print(f"added {added} trial hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
