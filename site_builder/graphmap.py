"""The concept map, laid out at build time into deterministic inline SVG (no script, no CDN).

Whole map: one cluster per category, each laid out by Fruchterman-Reingold on the edges inside
it, started from positions hashed from the ids (so the layout depends only on that cluster's
nodes and edges, and a cached cluster can be reused by an incremental build), then the
clusters are packed in rows in category order. Repulsion uses a grid (the original paper's
variant), so a step costs O(n) rather than O(n^2). Layout runs in a space squeezed along x,
then is stretched back, leaving room for the labels, which are wider than they are tall.

Local map: the entry in the middle, its neighbours on a ring, edges typed like the big map.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from html import escape

from site_builder.slugs import text_width

K = 52.0  # ideal edge length in the squeezed layout space
SQUEEZE = 2.4  # x is divided by this while laying out
FONT = 13.0  # label font size (px); keep in step with .kb-map text in style.css
NODE_H = 24.0
PAD = 28.0  # inside a cluster frame
GAP = 36.0  # between cluster frames
ROW_WIDTH = 1120.0  # clusters wrap past this width (fits a desktop window)
KIND_ORDER = {"prerequisite": 0, "related": 1, "link": 2}


@dataclass
class Node:
    id: str
    label: str
    title: str
    category: str
    cat_index: int
    href: str


def _seed(node_id: str) -> tuple[float, float]:
    d = hashlib.sha1(node_id.encode()).digest()
    return int.from_bytes(d[:4], "big") / 2**32, int.from_bytes(d[4:8], "big") / 2**32


def layout_cluster(ids: list[str], edges: Iterable[tuple[str, str]],
                   widths: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Positions (x, y), centred on 0, for the nodes `ids` joined by undirected `edges`; with
    `widths` (node box widths), boxes are then pushed apart until none overlap."""
    ids = sorted(ids)
    n = len(ids)
    if n == 0:
        return {}
    if n == 1:
        return {ids[0]: (0.0, 0.0)}
    index = {node: i for i, node in enumerate(ids)}
    pairs = sorted({(min(index[a], index[b]), max(index[a], index[b]))
                    for a, b in edges if a in index and b in index and a != b})
    spread = K * math.sqrt(n) * 0.6
    xs, ys = [], []
    for node in ids:
        u, v = _seed(node)
        r, t = spread * math.sqrt(u), 2 * math.pi * v
        xs.append(r * math.cos(t))
        ys.append(r * math.sin(t))
    k2 = K * K
    cell = 1.6 * K
    cutoff2 = cell * cell
    iterations = 30 if n < 300 else 24
    temp = spread * 0.5
    cool = temp / (iterations + 1)
    for _ in range(iterations):
        dx = [0.0] * n
        dy = [0.0] * n
        grid: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            grid.setdefault((int(xs[i] // cell), int(ys[i] // cell)), []).append(i)
        for (cx, cy), members in grid.items():
            # each pair once: this cell with itself, and with the 4 "forward" neighbour cells
            for other in ((cx, cy), (cx + 1, cy - 1), (cx + 1, cy), (cx + 1, cy + 1), (cx, cy + 1)):
                near = grid.get(other)
                if near is None:
                    continue
                same = other == (cx, cy)
                for a, i in enumerate(members):
                    xi, yi = xs[i], ys[i]
                    fx = fy = 0.0
                    for j in (members[a + 1:] if same else near):
                        ddx, ddy = xi - xs[j], yi - ys[j]
                        d2 = ddx * ddx + ddy * ddy
                        if d2 > cutoff2:
                            continue
                        if d2 < 0.01:
                            ddx, ddy, d2 = 0.1, 0.0, 0.01
                        f = k2 / d2  # k^2 / d, divided by d for the unit vector
                        fx += ddx * f
                        fy += ddy * f
                        dx[j] -= ddx * f
                        dy[j] -= ddy * f
                    dx[i] += fx
                    dy[i] += fy
        for i, j in pairs:
            ddx, ddy = xs[i] - xs[j], ys[i] - ys[j]
            d = math.sqrt(ddx * ddx + ddy * ddy) or 0.01
            f = d / K  # d^2 / k, divided by d
            dx[i] -= ddx * f
            dy[i] -= ddy * f
            dx[j] += ddx * f
            dy[j] += ddy * f
        for i in range(n):  # gravity keeps unlinked nodes near the cluster
            dx[i] -= xs[i] * 0.03
            dy[i] -= ys[i] * 0.03
            d = math.sqrt(dx[i] * dx[i] + dy[i] * dy[i])
            if d > 0:
                step = min(d, temp) / d
                xs[i] += dx[i] * step
                ys[i] += dy[i] * step
        temp = max(temp - cool, 1.0)
    mx, my = sum(xs) / n, sum(ys) / n
    xs = [(x - mx) * SQUEEZE for x in xs]
    ys = [y - my for y in ys]
    if widths:
        _separate(xs, ys, [widths.get(node, 60.0) for node in ids])
    return {node: (round(xs[i], 1), round(ys[i], 1)) for i, node in enumerate(ids)}


def _separate(xs: list[float], ys: list[float], ws: list[float], gap_x: float = 12.0, gap_y: float = 10.0) -> None:
    """Push overlapping node boxes apart (along the axis of least overlap) until none overlap."""
    n = len(xs)
    cw = max(ws) + gap_x
    ch = NODE_H + gap_y
    for _ in range(60):
        moved = False
        grid: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            grid.setdefault((int(xs[i] // cw), int(ys[i] // ch)), []).append(i)
        for (cx, cy), members in sorted(grid.items()):
            for other in ((cx, cy), (cx + 1, cy - 1), (cx + 1, cy), (cx + 1, cy + 1), (cx, cy + 1)):
                near = grid.get(other)
                if near is None:
                    continue
                same = other == (cx, cy)
                for a, i in enumerate(members):
                    for j in (members[a + 1:] if same else near):
                        dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                        ox = (ws[i] + ws[j]) / 2 + gap_x - abs(dx)
                        oy = ch - abs(dy)
                        if ox <= 0 or oy <= 0:
                            continue
                        moved = True
                        if oy * 2.5 <= ox:  # moving vertically is cheaper: labels are wide
                            step = (oy / 2 + 0.5) * (1 if dy > 0 or (dy == 0 and j > i) else -1)
                            ys[i] -= step
                            ys[j] += step
                        else:
                            step = (ox / 2 + 0.5) * (1 if dx > 0 or (dx == 0 and j > i) else -1)
                            xs[i] -= step
                            xs[j] += step
        if not moved:
            break


def cluster_key(ids: list[str], edges: Iterable[tuple[str, str]], widths: dict[str, float]) -> str:
    """What a cluster's layout depends on, hashed: a cached layout with this key can be reused."""
    members = sorted(ids)
    inside = set(members)
    pairs = sorted({tuple(sorted((a, b))) for a, b in edges if a in inside and b in inside and a != b})
    return hashlib.sha1(repr((members, pairs, [round(widths[m], 1) for m in members])).encode()).hexdigest()[:16]


@lru_cache(maxsize=65536)
def node_width(label: str) -> float:
    return text_width(label) * FONT + 18


def _edge_markup(kind: str, x1: float, y1: float, x2: float, y2: float, s: str, t: str, extra: str = "") -> str:
    marker = ' marker-end="url(#kb-arrow)"' if kind == "prerequisite" else ""
    return (f'<line class="e e-{kind}{extra}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"'
            f' data-s="{s}" data-t="{t}"{marker}/>')


def _trim(x1: float, y1: float, x2: float, y2: float, w2: float) -> tuple[float, float]:
    """End point of a line from (x1, y1) to a node at (x2, y2), stopped at the node's box edge."""
    dx, dy = x2 - x1, y2 - y1
    if dx == 0 and dy == 0:
        return x2, y2
    hw, hh = w2 / 2 + 3, NODE_H / 2 + 3
    scale = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return (x2 - dx * scale, y2 - dy * scale) if scale < 1 else (x1, y1)


def _node_markup(node: Node, x: float, y: float, extra_class: str = "") -> str:
    w = node_width(node.label)
    cls = f"n c{node.cat_index % 12}" + (f" {extra_class}" if extra_class else "")
    return (f'<a href="{escape(node.href)}" class="{cls}" data-id="{node.id}">'
            f"<title>{escape(node.title)}</title>"
            f'<rect x="{x - w / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{w:.1f}" height="{NODE_H:.0f}" rx="12"/>'
            f'<text x="{x:.1f}" y="{y + FONT * 0.36:.1f}">{escape(node.label)}</text></a>')


DEFS = ('<defs><marker id="kb-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"/></marker></defs>')


@dataclass
class Cluster:
    key: str  # category key
    name: str
    href: str
    cat_index: int
    positions: dict[str, tuple[float, float]]


def strongest_pairs(edges: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """One edge per pair of nodes, of its strongest kind (prerequisite, related, link); a
    prerequisite keeps its direction (source needs target)."""
    best: dict[tuple[str, str], tuple[str, str, str]] = {}
    for s, t, kind in edges:
        key = (min(s, t), max(s, t))
        old = best.get(key)
        if old is None or KIND_ORDER[kind] < KIND_ORDER[old[2]] or (kind == old[2] and (s, t) < old[:2]):
            best[key] = (s, t, kind)
    return sorted(best.values())


def whole_map_svg(nodes: dict[str, Node], edges: list[tuple[str, str, str]], clusters: list[Cluster]) -> str:
    """The whole concept map: clusters packed in rows, then edges (one per pair, see
    `strongest_pairs`), then nodes on top."""
    placed: dict[str, tuple[float, float]] = {}
    frames: list[str] = []
    x0 = y0 = 0.0
    row_h = 0.0
    total_w = 0.0
    for cl in clusters:
        if not cl.positions:
            continue
        left = min(x - node_width(nodes[i].label) / 2 for i, (x, _) in cl.positions.items())
        right = max(x + node_width(nodes[i].label) / 2 for i, (x, _) in cl.positions.items())
        top = min(y for _, y in cl.positions.values()) - NODE_H / 2
        bottom = max(y for _, y in cl.positions.values()) + NODE_H / 2
        head = text_width(cl.name) * 15 + 2 * PAD
        w = max(right - left + 2 * PAD, head)
        h = bottom - top + 2 * PAD + 22
        if x0 > 0 and x0 + w > ROW_WIDTH:
            x0, y0, row_h = 0.0, y0 + row_h + GAP, 0.0
        ox = x0 + (w - (right - left)) / 2 - left
        oy = y0 + PAD + 22 - top
        for node_id, (x, y) in cl.positions.items():
            placed[node_id] = (x + ox, y + oy)
        frames.append(
            f'<g class="cluster c{cl.cat_index % 12}"><rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" rx="14"/><a href="{escape(cl.href)}"><text class="cluster-name" x="{x0 + 14:.1f}" '
            f'y="{y0 + 24:.1f}">{escape(cl.name)}</text></a></g>'
        )
        x0 += w + GAP
        row_h = max(row_h, h)
        total_w = max(total_w, x0 - GAP)
    total_h = y0 + row_h
    lines = []
    for s, t, kind in sorted(edges, key=lambda e: (-KIND_ORDER[e[2]], e[0], e[1])):
        if s not in placed or t not in placed:
            continue
        (x1, y1), (x2, y2) = placed[s], placed[t]
        if kind == "prerequisite":  # arrow from what to learn first to what needs it
            (x1, y1), (x2, y2), s, t = (x2, y2), (x1, y1), t, s
        ex, ey = _trim(x1, y1, x2, y2, node_width(nodes[t].label))
        cross = " x" if nodes[s].category != nodes[t].category else ""
        lines.append(_edge_markup(kind, x1, y1, ex, ey, s, t, cross))
    body = "".join(_node_markup(nodes[i], x, y) for i, (x, y) in sorted(placed.items()))
    return (f'<svg class="kb-map" id="kb-whole-map" viewBox="-10 -10 {total_w + 20:.0f} {total_h + 20:.0f}" '
            f'width="{total_w + 20:.0f}" height="{total_h + 20:.0f}" role="group" aria-label="概念图">'
            f'{DEFS}<g class="frames">{"".join(frames)}</g><g class="edges">{"".join(lines)}</g>'
            f'<g class="nodes">{body}</g></svg>')


def local_map_svg(center: Node, neighbours: list[tuple[Node, str, bool]], limit: int = 24) -> str:
    """The entry and its neighbours on a ring. `neighbours`: (node, edge kind, edge points out)."""
    shown = neighbours[:limit]
    n = len(shown)
    cw = node_width(center.label)
    if n == 0:
        w, h = cw + 40, NODE_H + 40
        return (f'<svg class="kb-map kb-local-map" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" '
                f'role="group" aria-label="本条目的概念关系">{_node_markup(center, w / 2, h / 2, "center")}</svg>')
    widest = max(node_width(nb.label) for nb, _, _ in shown)
    rx = max(150.0, widest * 0.9 + cw / 2 + 20, n * 16.0)
    ry = max(80.0, n * 11.0)
    pos = []
    for i in range(n):
        a = -math.pi / 2 + 2 * math.pi * i / n
        pos.append((rx * math.cos(a), ry * math.sin(a)))
    half_w = rx + widest / 2 + 12
    half_h = ry + NODE_H / 2 + 12
    cx, cy = half_w, half_h
    lines, nodes = [], []
    for (nb, kind, out), (x, y) in zip(shown, pos, strict=True):
        x, y = x + cx, y + cy
        src, dst = ((cx, cy), (x, y)) if out else ((x, y), (cx, cy))
        s, t = (center.id, nb.id) if out else (nb.id, center.id)
        if kind == "prerequisite":
            src, dst, s, t = dst, src, t, s
        tw = node_width(nb.label) if dst == (x, y) else cw
        ex, ey = _trim(src[0], src[1], dst[0], dst[1], tw)
        lines.append(_edge_markup(kind, src[0], src[1], ex, ey, s, t))
        nodes.append(_node_markup(nb, x, y))
    w, h = 2 * half_w, 2 * half_h
    return (f'<svg class="kb-map kb-local-map" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" '
            f'role="group" aria-label="本条目的概念关系">{DEFS}<g class="edges">{"".join(lines)}</g>'
            f'<g class="nodes">{"".join(nodes)}{_node_markup(center, cx, cy, "center")}</g></svg>')
