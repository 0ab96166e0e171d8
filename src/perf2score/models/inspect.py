"""What an aligned model learned: parameter counts, gates and the mixture weights (which
performance layer each score layer reads), as text and as an SVG heat map."""

from __future__ import annotations

from perf2score.models.adapter import AlignedModel

CELL, MARGIN = 44, 120


def describe(model: AlignedModel) -> dict:
    """Counts, per-layer gates (tanh) and mixture weights of an aligned model."""
    return {
        "mapping": model.config.mapping,
        "mode": model.config.mode,
        "parameters": model.parameter_counts(),
        "gates": [round(float(a.gate.detach().tanh()), 4) for a in model.adapters],
        "mixture": [[round(w, 4) for w in row] for row in model.mixture_weights()],
    }


def mixture_svg(mixture: list[list[float]], title: str = "") -> str:
    """A heat map: one row per score layer, one column per performance state (0 = embeddings)."""
    rows, cols = len(mixture), len(mixture[0]) if mixture else 0
    width, height = max(MARGIN + cols * CELL + 20, 480), 40 + rows * CELL + 44
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="20" font-size="14">{title}</text>',
    ]
    for i, row in enumerate(mixture):
        y = 40 + i * CELL
        parts.append(f'<text x="10" y="{y + CELL / 2 + 4}">score layer {i + 1}</text>')
        for j, weight in enumerate(row):
            x = MARGIN + j * CELL
            shade = int(255 * (1 - min(max(weight, 0.0), 1.0)))
            ink = "white" if weight > 0.5 else "black"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{CELL - 2}" height="{CELL - 2}" '
                f'fill="rgb({shade},{shade},255)"/>'
                f'<text x="{x + 5}" y="{y + CELL / 2 + 4}" fill="{ink}">{weight:.2f}</text>'
            )
    y = 40 + rows * CELL + 16
    for j in range(cols):
        label = "emb" if j == 0 else f"L{j}"
        parts.append(f'<text x="{MARGIN + j * CELL + 10}" y="{y}">{label}</text>')
    parts.append(f'<text x="{MARGIN}" y="{y + 20}">performance LM state read</text></svg>')
    return "\n".join(parts)
