"""What every plot shares (bench, analyze, demo and the benchmarks/ scripts): the colour of
each cell kind, the headless pyplot, the atomic PNG write and the label placer. Needs
matplotlib only when a plot is drawn; imports nothing from ltc_edge."""

from __future__ import annotations

from pathlib import Path

# LTC and LSTM are the comparison users come for: they get the strong colours
COLORS = {"ltc": "tab:red", "lstm": "tab:blue", "cfc": "tab:orange", "ctrnn": "tab:green",
          "node": "tab:purple", "gru": "tab:cyan"}


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (ImportError when matplotlib is missing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 120) -> str:
    """Write `fig` as a PNG atomically (a temporary file, then a rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(path)
    return str(path)


# label offsets (points) tried in turn, nearest first: right/left, above/below, then further out
LABEL_OFFSETS = [(5, 3), (5, -3), (-5, 3), (-5, -3)] + \
    [(dx, dy) for r in (12, 22, 34, 48, 64) for dy in (r, -r) for dx in (5, -5)]


def label_box(anchor, offset, size):
    """(x0, y0, x1, y1) of a label of `size` put at anchor + offset, growing away from it."""
    (ax_, ay), (dx, dy), (w, h) = anchor, offset, size
    x0 = ax_ + dx if dx >= 0 else ax_ + dx - w
    y0 = ay + dy if dy >= 0 else ay + dy - h
    return x0, y0, x0 + w, y0 + h


def overlap_area(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(anchors, sizes, offsets=LABEL_OFFSETS, marker: float = 5.5, bounds=None) -> list[tuple]:
    """A simple label placer (adjustText-like): each label, in turn, takes the first offset
    whose box overlaps no label placed before, no marker (squares of side 2*marker around the
    anchors) and stays inside `bounds` (x0, y0, x1, y1: the axes); where none is free, the
    least overlapping. Units are display points."""
    placed = []
    markers = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors]
    out = []
    for anchor, size in zip(anchors, sizes):
        best = None
        for off in offsets:
            box = label_box(anchor, off, size)
            cost = sum(overlap_area(box, b) for b in placed + markers)
            if bounds is not None:
                cost += (box[2] - box[0]) * (box[3] - box[1]) - overlap_area(box, bounds)
            if best is None or cost < best[0]:
                best = (cost, off, box)
            if cost == 0:
                break
        placed.append(best[2])
        out.append(best[1])
    return out


def label_points(fig, ax, xy, labels):
    """Text labels beside the points that neither overlap each other nor the markers."""
    texts = [ax.annotate(t, p, fontsize=6, xytext=(0, 0), textcoords="offset points", in_layout=False)
             for t, p in zip(labels, xy)]
    fig.canvas.draw()
    renderer, k = fig.canvas.get_renderer(), 72.0 / fig.dpi  # pixels -> points
    sizes = [(t.get_window_extent(renderer).width * k, t.get_window_extent(renderer).height * k) for t in texts]
    anchors = [tuple(v * k for v in ax.transData.transform(p)) for p in xy]
    bounds = tuple(v * k for v in ax.get_window_extent(renderer).extents)
    for t, (dx, dy) in zip(texts, place_labels(anchors, sizes, bounds=bounds)):
        t.set_position((dx, dy))
        t.set_ha("left" if dx >= 0 else "right")
        t.set_va("bottom" if dy >= 0 else "top")
        if abs(dy) > 6:  # a thin leader line from a label moved away to its point
            ax.annotate("", t.xy, xytext=(dx, dy), textcoords="offset points", in_layout=False,
                        arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "gray"})
