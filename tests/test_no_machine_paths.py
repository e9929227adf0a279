"""No committed file names a path of the machine that made it (a user has none of them): generated results and
docs say the command, not where it ran."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_PATHS = ("/" + "work/", "/" + "root/")  # split so that this file does not name them


def test_no_tracked_file_names_a_machine_path():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".gz", ".png", ".pdf", ".pt", ".db"}:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        found += [f"{name}: {p}" for p in MACHINE_PATHS if p in text]
    assert not found, found
