"""A picture of the tape, drawn by the library itself (SVG text; no graphviz needed).

Layout: one row per entry, top to bottom in execution order (the order the forward ran;
the reverse sweep walks it bottom to top). An entry's box shows its index, op, output shape
and dtype. Leaves and constants sit left of the first entry that uses them, a leaf labelled
with its parameter name when one is known (`names=` a Module or a dict, or `tape.label(model)`).
A constant scalar (the 2.0 in `x * 2.0`) gets no box of its own: its entry says "with scalar".
An edge from the row just above is a straight line; one from further up is an arc on the
right. After a backward each edge carries the norm of the gradient of the value it carries
(the source's whole adjoint; `save_html` shows each separate increment).

A long tape is elided in the middle (the first and last entries are kept, and the picture
says how many were left out): a few hundred boxes would not be readable anyway.
"""
import html

from .tape_graph import history, input_shapes, namer, norm, sources

BOX_W, BOX_H, LEAF_W, STACK, ROW_GAP, LANE, TOP, MARGIN = 200, 40, 180, 46, 18, 110, 40, 12
MAX_ENTRIES = 40   # beyond this the middle is elided: 40 rows (~2,400 px) still scroll comfortably


class Node:
    """A box: an entry, the elided block, a leaf or a constant; `row` in the picture, `slot` in a leaf stack."""
    __slots__ = ("id", "kind", "x", "y", "w", "lines", "row", "slot")

    def __init__(self, id, kind, row, lines, slot=0):
        self.id, self.kind, self.row, self.lines, self.slot = id, kind, row, lines, slot
        self.x, self.y, self.w = 0, 0, BOX_W if kind in ("entry", "elided") else LEAF_W


class Edge:
    """Input `pos` (of `n`) of entry box `dst`, coming from box `src`; `label` is its |gradient| or ''."""
    __slots__ = ("id", "src", "dst", "label", "pos", "n")

    def __init__(self, id, src, dst, label, pos, n):
        self.id, self.src, self.dst, self.label, self.pos, self.n = id, src, dst, label, pos, n


def _shape(s):
    return str(tuple(int(n) for n in s))


def _fmt_norm(x):
    return "" if x is None else f"|g| {x:.3g}"


def layout(tape, names=None, entries=None, max_entries=MAX_ENTRIES):
    """Boxes and edges of the picture (positions in pixels), its height, and a caption saying what is shown."""
    entries = tape.entries if entries is None else list(entries)
    total, shown, elided, head = len(entries), entries, [], len(entries)
    if total > max_entries:
        head = max(1, max_entries // 4)
        tail = total - (max_entries - head)  # the first entry of the kept end
        shown, elided = entries[:head] + entries[tail:], entries[head:tail]
    swept = any(e.grad_out is not None for e in entries)
    nodes = {}
    for k, e in enumerate(shown):  # one row per entry; the elided block takes one row after the head
        row = k + (1 if elided and k >= head else 0)
        nodes[f"e{e.index}"] = Node(f"e{e.index}", "entry", row, [f"#{e.index} {e.name}",
                                                                 f"{_shape(e.out_shape)} {e.out_dtype}"])
    if elided:
        nodes["elided"] = Node("elided", "elided", head, [f"… {len(elided)} entries elided …",
                                                          f"#{elided[0].index} to #{elided[-1].index}"])
    edges = _edges(tape, names, shown, elided, entries, nodes, swept)
    height = _place_boxes(nodes)
    caption = f"tape: {total} entr{'y' if total == 1 else 'ies'}"
    if elided:
        caption += f", {len(elided)} elided in the middle (showing {len(shown)}; pass max_entries= for more)"
    if swept:
        caption += "; edges: |gradient| of the value on the edge"
    return nodes, edges, caption, height


def _edges(tape, names, shown, elided, entries, nodes, swept):
    """One edge per input of each shown entry; adds the leaf and constant boxes they start from."""
    name, by_index, elided_ids = namer(tape, names), {e.index: e for e in entries}, {e.index for e in elided}
    stacks, labelled, edges = {}, set(), []  # stacks: row -> leaf/constant boxes placed there so far

    def place(id, kind, row, lines):
        if id not in nodes:
            nodes[id] = Node(id, kind, row, lines, slot=stacks.get(row, 0))
            stacks[row] = nodes[id].slot + 1

    for e in shown:
        dst = f"e{e.index}"
        row, shapes = nodes[dst].row, input_shapes(e)
        for pos, (s, shape) in enumerate(zip(sources(e), shapes)):
            label = ""
            if s.kind == "entry" and f"e{s.index}" in nodes:
                src = f"e{s.index}"
            elif s.kind == "entry" and s.index in elided_ids:
                src = "elided"
            elif s.kind in ("entry", "outside"):  # made by an entry no longer on the tape, or on another
                src = f"gone{e.index}_{pos}"
                place(src, "constant", row, [f"#{s.index}", "not on this tape"])
            elif s.kind == "leaf":
                t = s.tensor
                src = f"leaf{id(t)}" if t is not None else f"leaf_{e.index}_{pos}"
                place(src, "leaf", row, [name(t) or "leaf", _shape(shape) + (f" {t.dtype}" if t is not None else "")])
                if swept and src not in labelled and t is not None and t.grad is not None:
                    label = _fmt_norm(norm(t.grad.array))  # a leaf used twice: its |grad| once, on its first edge
                labelled.add(src)
            elif len(shape) == 0:  # a Python number like the 2.0 in x * 2.0: named in the box, not drawn
                nodes[dst].lines[0] += " with scalar"
                continue
            else:
                src = f"const{e.index}_{pos}"
                place(src, "constant", row, ["constant", _shape(shape)])
            if swept and s.kind == "entry" and s.index in by_index:
                label = _fmt_norm(norm(by_index[s.index].grad_out))
            edges.append(Edge(f"x{e.index}_{pos}", src, dst, label, pos, len(shapes)))
    return edges


def _place_boxes(nodes):
    """Pixel positions: rows grow to hold their stack of leaves; entries in one column right of the
    leaves, centred in their row. Returns the picture's height."""
    n_rows = 1 + max((n.row for n in nodes.values()), default=-1)
    stacked = [0] * n_rows
    for n in nodes.values():
        if n.kind in ("leaf", "constant"):
            stacked[n.row] = max(stacked[n.row], n.slot + 1)
    heights = [max(BOX_H, k * STACK - (STACK - BOX_H)) for k in stacked]
    tops, y = [], TOP
    for h in heights:
        tops.append(y)
        y += h + ROW_GAP
    x0 = MARGIN + (LEAF_W + LANE if any(stacked) else 0)
    for n in nodes.values():
        if n.kind in ("entry", "elided"):
            n.x, n.y = x0, tops[n.row] + (heights[n.row] - BOX_H) // 2
        else:
            n.x, n.y = MARGIN, tops[n.row] + n.slot * STACK
    return y


def _edge_path(a, b, k, n):
    """SVG path from node a into node b (input k of n), and where its label goes."""
    if a.kind in ("entry", "elided") and b.row == a.row + 1:
        x = a.x + BOX_W / 2
        return f"M{x},{a.y + BOX_H} L{x},{b.y}", (x + 6, (a.y + BOX_H + b.y) / 2 + 4)
    y2 = b.y + BOX_H * (k + 1) / (n + 1)
    if a.kind in ("entry", "elided"):  # an arc on the right, wider the further it jumps
        x1, y1 = a.x + BOX_W, a.y + BOX_H / 2
        bulge = x1 + 30 + 14 * min(b.row - a.row, 12)
        return (f"M{x1},{y1} C{bulge},{y1} {bulge},{y2} {x1},{y2}",
                (0.75 * bulge + 0.25 * x1 + 4, (y1 + y2) / 2))
    x1, y1, x2 = a.x + a.w, a.y + BOX_H / 2, b.x
    mid = (x1 + x2) / 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}", (x1 + 6, y1 - 4)


FILL = {"entry": "#dbeafe", "leaf": "#dcfce7", "constant": "#f3f4f6", "elided": "#fff7ed"}


def svg(tape, names=None, entries=None, max_entries=MAX_ENTRIES):
    """The picture as SVG text: nodes are <g id="e3" class="node entry">, edges <path id="x3_0">."""
    nodes, edges, caption, height = layout(tape, names, entries, max_entries)
    x0 = max([n.x for n in nodes.values()] + [MARGIN])  # the entry column
    far = max([nodes[e.dst].row - nodes[e.src].row for e in edges
               if nodes[e.src].kind in ("entry", "elided")] + [1])  # the longest jump: the widest arc
    width = max(x0 + BOX_W + (30 + 14 * min(far, 12) + 70 if far > 1 else 90), 2 * MARGIN + 7.3 * len(caption))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
           f'viewBox="0 0 {width:.0f} {height}" font-family="monospace" font-size="12">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
           'markerUnits="userSpaceOnUse" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           f'<text x="{MARGIN}" y="20" font-size="13">{html.escape(caption)}</text>']
    for e in edges:
        d, (lx, ly) = _edge_path(nodes[e.src], nodes[e.dst], e.pos, e.n)
        out.append(f'<path id="{e.id}" class="edge" data-src="{e.src}" d="{d}" fill="none" stroke="#555" '
                   'stroke-width="1.3" '
                   f'marker-end="url(#arrow)"/>')
        if e.label:
            out.append(f'<text class="edge-label" x="{lx:.0f}" y="{ly:.0f}" fill="#92400e" '
                       f'font-size="11">{html.escape(e.label)}</text>')
    for n in nodes.values():
        dash = ' stroke-dasharray="4 3"' if n.kind == "elided" else ""
        out.append(f'<g id="{n.id}" class="node {n.kind}"><rect x="{n.x}" y="{n.y}" width="{n.w}" '
                   f'height="{BOX_H}" rx="5" fill="{FILL[n.kind]}" stroke="#334155"{dash}/>')
        for k, line in enumerate(n.lines):
            weight = ' font-weight="bold"' if k == 0 and n.kind == "entry" else ""
            out.append(f'<text x="{n.x + 8}" y="{n.y + 16 + 15 * k}"{weight}>{html.escape(line)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def draw(tape, names=None, max_entries=MAX_ENTRIES):
    """The tape as SVG text (what Jupyter shows for a tape); see the module docstring."""
    return svg(tape, names, max_entries=max_entries)


def tensor_svg(tensor, names=None, max_entries=MAX_ENTRIES):
    """The picture of the entries that made `tensor`, or None for a tensor without history."""
    entries = history(tensor)
    if not entries:
        return None
    return svg(tensor.entry.tape, names, entries=entries, max_entries=max_entries)


def tensor_html(tensor):
    """Jupyter's view of a tensor with history: its values, then its history's picture."""
    picture = tensor_svg(tensor)
    if picture is None:
        return None  # a leaf: Jupyter falls back to the text repr
    return f"<pre>{html.escape(repr(tensor))}</pre>\n{picture}"


def tape_html(tape):
    """Jupyter's HTML view of a tape: the picture in a scrollable box."""
    return f'<div style="max-height:720px;overflow:auto">{draw(tape)}</div>'
