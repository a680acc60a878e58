"""`tests capacity --html`: one self-contained page (inline SVG and CSS, no script): the
measured points and the fitted Universal Scalability Law curve, the numbers, the capacity
trend of the stepped runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadmgr.models.axis import nice_ticks
from loadmgr.service.reports.html import escaped, escaped_clean, footer, page_head, table

if TYPE_CHECKING:
    from loadmgr.service.capacity.report import Capacity

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #111; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
th.n, td.n { text-align: right; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.grid { stroke: #e5e7eb; } .curve { stroke: #2563eb; fill: none; stroke-width: 2; }
.point { fill: #dc2626; } .peak { stroke: #16a34a; stroke-dasharray: 4 3; }
footer { margin-top: 32px; color: #666; font-size: 12px; }
"""
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 960, 320, 64, 16, 16, 36


def render_capacity_html(found: Capacity) -> str:
    fit = found.fit
    knee = f"{found.knee_users:g} users" if found.knee_users is not None else "none seen"
    peak_at = f" at {fit.peak_users:,.1f} users" if fit.peak_users is not None else ""
    rows = [
        [f"{p.users:g}", f"{p.rps:,.1f}", f"{fit.throughput(p.users):,.1f}",
         "-" if p.p95 is None else f"{p.p95:,.0f}", p.run_id, p.step]
        for p in found.points
    ]  # fmt: skip
    trend = [
        [c.run_id, c.created_at, "-" if c.peak_rps is None else f"{c.peak_rps:,.1f}",
         "-" if c.knee_users is None else f"{c.knee_users:g}",
         "new regime" if c.starts_regime else (c.why_not or "")]
        for c in found.trend
    ]  # fmt: skip
    return "\n".join(
        [
            page_head(f"Capacity of {found.test.name}", CSS),
            "<body>",
            f"<h1>Capacity of {escaped(found.test.name)}</h1>",
            f"<p>Peak <b>{fit.peak_rps:,.1f} req/s</b>{escaped(peak_at)}; knee (p95 starts "
            f"to climb past) {escaped(knee)}; σ {fit.sigma:.4f}, κ {fit.kappa:.6f}, "
            f"λ {fit.lam:,.2f} req/s a user, R² {fit.r2:.3f}.</p>",
            _chart(found),
            "<h2>Points</h2>",
            table(["users", "req/s", "fitted", "p95 ms", "run", "step"], rows, numeric_from=0),
            *(
                [
                    "<h2>Capacity of the stepped runs</h2>",
                    table(["run", "created", "peak req/s", "knee", ""], trend),
                ]
                if trend
                else []
            ),  # fmt: skip
            footer(),
            "</body></html>",
        ]
    )


def _chart(found: Capacity) -> str:
    curve = found.curve()
    high_x = curve[-1][0]
    top = max([rps for _, rps in curve] + [p.rps for p in found.points] + [1.0])
    ticks = nice_ticks(0.0, top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(users: float) -> float:
        return LEFT + users / high_x * plot_w

    def sy(rps: float) -> float:
        return TOP + plot_h - min(rps, ticks[-1]) / (ticks[-1] or 1.0) * plot_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        'aria-label="requests per second by users">'
    ]
    for value in ticks:
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(value):.1f}" '
            f'y2="{sy(value):.1f}"/><text x="{LEFT - 6}" y="{sy(value) + 4:.1f}" '
            f'text-anchor="end">{value:g}</text>'
        )
    for users in nice_ticks(0.0, high_x):
        if users <= high_x:
            parts.append(
                f'<text x="{sx(users):.1f}" y="{HEIGHT - 18}" text-anchor="middle">{users:g}</text>'
            )
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 2}">users</text>')
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{sx(u):.1f},{sy(r):.1f}" for i, (u, r) in enumerate(curve)
    )
    parts.append(f'<path class="curve" d="{path}"/>')
    peak = found.fit.peak_rps
    parts.append(
        f'<line class="peak" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(peak):.1f}" '
        f'y2="{sy(peak):.1f}"/>'
    )
    for p in found.points:
        parts.append(
            f'<circle class="point" cx="{sx(p.users):.1f}" cy="{sy(p.rps):.1f}" r="4">'
            f"<title>{escaped_clean(f'{p.users:g} users: {p.rps:,.1f} req/s')}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
