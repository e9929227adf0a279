"""Figure styles: page widths, font sizes and line widths for a report, a paper or slides; the empty figure every
plot starts from; saving as PDF (TrueType fonts embedded) and PNG; the env-step axis formatter (100k, 1M).

========= ============== ============== ========== ===================================================
style     one column     full width     base font  for
========= ============== ============== ========== ===================================================
default   3.4 in         7.0 in         8 pt       ``report.md`` (the report's look)
paper     3.25 in        6.75 in        8 pt       a two-column paper (NeurIPS/ICML-like column widths)
slides    5.5 in         11.0 in        14 pt      a 16:9 slide (13.33 in wide) at arm's length
========= ============== ============== ========== ===================================================

Heights scale with the style's ``scale`` (its base font over 8 pt), so a panel keeps its proportions in every
style. PDFs embed fonts as TrueType (``pdf.fonttype`` 42: editable text, no Type 3 bitmaps). :data:`LAYOUTS` are
the ways learning curves are laid out (:func:`analysis.figures.plot_curves`).

Importing this module does not import matplotlib (the command line builds its flags from these names).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

__all__ = ["Style", "STYLES", "LAYOUTS", "get_style", "new_figure", "save", "step_formatter", "format_steps",
           "COLUMN_WIDTH", "TEXT_WIDTH", "FIGURE_FORMATS"]

#: learning-curve layouts: ``auto`` picks; one axes; one panel per agent; one panel per method group
LAYOUTS = ("auto", "overlay", "agents", "groups")


@dataclass(frozen=True)
class Style:
    """A figure style: the two widths (inches), the base font size (points) and the line width of data lines."""

    name: str
    column: float
    text: float
    font: float
    line: float = 1.2

    @property
    def scale(self) -> float:
        """Height multiplier against the default style (base font / 8 pt)."""
        return self.font / 8.0

    def width(self, which: str) -> float:
        """``"column"`` or ``"text"`` → inches."""
        if which not in ("column", "text"):
            raise ValueError(f"width {which!r} is not valid; allowed: column, text")
        return self.column if which == "column" else self.text

    def rc(self) -> dict:
        """matplotlib rcParams of this style."""
        small = self.font - 1
        return {"font.size": self.font, "axes.titlesize": self.font, "axes.labelsize": self.font,
                "xtick.labelsize": small, "ytick.labelsize": small, "legend.fontsize": small,
                "figure.titlesize": self.font, "figure.labelsize": self.font,
                # matplotlib's 0.8 pt axes and ticks in the default style, thicker for larger fonts
                "axes.linewidth": 0.8 * self.scale ** 0.5, "xtick.major.width": 0.8 * self.scale ** 0.5,
                "ytick.major.width": 0.8 * self.scale ** 0.5,
                "axes.spines.top": False, "axes.spines.right": False,
                "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": 200}


STYLES: dict[str, Style] = {
    "default": Style("default", column=3.4, text=7.0, font=8, line=1.2),
    "paper": Style("paper", column=3.25, text=6.75, font=8, line=1.1),
    "slides": Style("slides", column=5.5, text=11.0, font=14, line=2.2),
}
COLUMN_WIDTH, TEXT_WIDTH = STYLES["default"].column, STYLES["default"].text
#: what :func:`save` writes
FIGURE_FORMATS = ("pdf", "png")


def get_style(style: str | Style | None) -> Style:
    """A :class:`Style` from its name (``None``: the default); one-line ``ValueError`` naming the allowed ones."""
    if isinstance(style, Style):
        return style
    name = style or "default"
    if name not in STYLES:
        raise ValueError(f"style {name!r} is not valid; allowed: {', '.join(STYLES)}")
    return STYLES[name]


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg", force=False)
    return matplotlib


def new_figure(width: float, height: float, style: str | Style | None = None) -> Figure:
    """An empty figure ``width`` × ``height`` inches in ``style`` (constrained layout, no top/right spines).
    The style's rcParams stay set until the next figure, so :func:`save` embeds its fonts the same way."""
    from matplotlib.figure import Figure

    _matplotlib().rcParams.update(get_style(style).rc())
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.pdf`` and ``name.png`` into ``out_dir`` (the page is exactly the figure's size: no tight
    cropping, so a paper-style figure is its column's width); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FIGURE_FORMATS]
    with _matplotlib().rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        for p in paths:
            fig.savefig(p)
    return paths


def format_steps(x: float, _pos=None) -> str:
    """Env steps as 0, 500, 100k, 1.5M."""
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:g}M"
    if a >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def step_formatter() -> FuncFormatter:
    """A tick formatter writing env steps as 100k / 1M (:func:`format_steps`)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(format_steps)
