"""benchmarks/gpu_check.py without a GPU: it says it skipped, writes nothing and exits 0; its table goes into the
marked section of a document, replacing an older one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_without_cuda_it_skips_and_exits_0(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the skip path does not apply")
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(doc)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "gpu-check: skipped: no CUDA device" in out.stdout
    assert doc.read_text() == "# Performance\n"


def test_the_table_replaces_the_marked_section(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nbefore\n")
    gpu_check.write_section(doc, "table one\n")
    gpu_check.write_section(doc, "table two\n")
    text = doc.read_text()
    assert text.count(gpu_check.BEGIN) == 1 and "table two" in text and "table one" not in text
    assert text.startswith("# Performance\n\nbefore\n\n<!-- gpu-check:begin -->")


def test_section_budgets_end_at_their_share():
    d = gpu_check.Deadline(100.0)
    assert d.until(0.3).end == pytest.approx(d.start + 30.0) and d.until(2.0).end == d.end
