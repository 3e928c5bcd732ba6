"""tape.draw(): the picture of the tape, read back as SVG (which box is which, which edge joins what)."""
import xml.etree.ElementTree as ET

import numpy as np

import tinygrad_mm as tg
from tinygrad_mm import Tape

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg):
    """{node id: (kind, [text lines])}, {edge id: source node id}, [edge labels], caption."""
    root = ET.fromstring(svg)
    nodes = {g.get("id"): (g.get("class").split()[1], [t.text for t in g.findall("s:text", NS)])
             for g in root.findall("s:g", NS)}
    edges = {p.get("id"): p.get("data-src") for p in root.findall("s:path", NS) if p.get("class") == "edge"}
    labels = [t.text for t in root.findall("s:text", NS) if t.get("class") == "edge-label"]
    caption = root.findall("s:text", NS)[0].text
    return nodes, edges, labels, caption


def small_model():
    lin = tg.nn.Linear(3, 2, dtype=np.float64, generator=tg.Generator(0))
    x = tg.tensor(np.arange(6.0).reshape(2, 3) / 6)
    with Tape() as tape:
        h = lin(x).tanh()
        loss = (h * h).sum()
    return lin, tape, h, loss


def test_boxes_show_op_shape_dtype_and_leaves_are_named_after_parameters():
    lin, tape, h, loss = small_model()
    nodes, edges, labels, caption = parse(tape.draw(names=lin))
    entries = {k: v[1] for k, v in nodes.items() if v[0] == "entry"}
    assert entries == {"e0": ["#0 Affine", "(2, 2) float64"], "e1": ["#1 Tanh", "(2, 2) float64"],
                       "e2": ["#2 Mul", "(2, 2) float64"], "e3": ["#3 Sum", "() float64"]}
    leaves = sorted(v[1][0] for v in nodes.values() if v[0] == "leaf")
    assert leaves == ["bias", "weight"]
    assert [v[1] for v in nodes.values() if v[0] == "constant"] == [["constant", "(2, 3)"]]
    # one edge per input, each from the box that made it; h * h: two edges from #1
    assert edges["x1_0"] == "e0" and edges["x2_0"] == edges["x2_1"] == "e1" and edges["x3_0"] == "e2"
    assert nodes[edges["x0_1"]][1][0] == "weight" and nodes[edges["x0_2"]][1][0] == "bias"
    assert nodes[edges["x0_0"]][0] == "constant" and len(edges) == 7
    assert labels == [] and caption == "tape: 4 entries"                 # no gradients yet


def test_after_backward_each_edge_carries_the_gradient_norm_and_the_structure_survives():
    lin, tape, h, loss = small_model()
    before = parse(tape.draw(names=lin))
    tape.label(lin)
    loss.backward()
    assert all(e.freed for e in tape.entries)
    nodes, edges, labels, caption = parse(tape.draw())                   # names from tape.label
    assert edges == before[1] and set(nodes) == set(before[0])           # same boxes, same edges
    hv = np.tanh(np.arange(6.0).reshape(2, 3) / 6 @ lin.weight.detach().numpy().T + lin.bias.detach().numpy())
    g_tanh = 2 * hv                                                      # d loss / d h, both uses of h
    expect = {f"|g| {np.linalg.norm(g_tanh * (1 - hv ** 2)):.3g}",      # edge from #0 (Affine)
              f"|g| {np.linalg.norm(g_tanh):.3g}",                       # the edges from #1 (Tanh)
              f"|g| {np.linalg.norm(np.ones((2, 2))):.3g}",              # from #2 (Mul): d sum = 1
              f"|g| {np.linalg.norm(lin.weight.grad.array):.3g}", f"|g| {np.linalg.norm(lin.bias.grad.array):.3g}"}
    assert set(labels) == expect and len(labels) == 6                    # every edge but the constant's
    assert caption == "tape: 4 entries; edges: |gradient| of the value on the edge"


def test_a_long_tape_is_elided_in_the_middle_and_says_so():
    x = tg.tensor(np.ones(3), requires_grad=True)
    with Tape() as tape:
        h = x
        for _ in range(150):
            h = (h * 0.5).tanh()
        h.sum().backward()
    svg = tape.draw(max_entries=30)
    nodes, edges, labels, caption = parse(svg)
    assert caption == ("tape: 301 entries, 271 elided in the middle (showing 30; pass max_entries= for more); "
                       "edges: |gradient| of the value on the edge")
    shown = sorted(int(k[1:]) for k, v in nodes.items() if v[0] == "entry")
    assert shown == list(range(7)) + list(range(278, 301))               # the first quarter and the end
    assert nodes["elided"][1] == ["… 271 entries elided …", "#7 to #277"]
    assert nodes["e0"][1][0] == "#0 Mul with scalar" and nodes["e1"][1][0] == "#1 Tanh"   # 0.5: no box of its own
    assert not any(v[0] == "constant" for v in nodes.values()) and "x0_1" not in edges
    assert edges["x278_0"] == "elided" and all(src in nodes for src in edges.values())
    assert len(svg) < 40_000 and int(ET.fromstring(svg).get("height")) < 2500
    assert len(parse(tape.draw())[0]) < len(tape.entries) // 3          # the default limit elides too


def test_a_tensors_history_is_drawn_without_unrelated_entries_and_a_leaf_has_no_picture():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with Tape() as tape:
        unrelated = x.exp()
        y = (x * 3.0).tanh()
        nodes, edges, _, _ = parse(y._repr_html_().split("</pre>\n", 1)[1])
        assert sorted(k for k, v in nodes.items() if v[0] == "entry") == ["e1", "e2"]
        assert y._repr_html_().startswith("<pre>tensor(")
        assert x._repr_html_() is None and unrelated.entry is not None  # Jupyter shows a leaf as text
        assert tape._repr_svg_() == tape.draw() and tape.draw() in tape._repr_html_()
        y.sum().backward()
        nodes, _, labels, _ = parse(y._repr_html_().split("</pre>\n", 1)[1])   # history after the sweep
    assert sorted(k for k, v in nodes.items() if v[0] == "entry") == ["e1", "e2"] and labels


def test_an_input_made_on_another_tape_is_drawn_as_an_outside_box():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with Tape():
        a = x * 2.0
    with Tape() as tape:
        b = a.tanh()
    nodes, edges, _, _ = parse(tape.draw())
    assert nodes[edges[f"x{b.entry.index}_0"]][1] == [f"#{a.entry.index}", "not on this tape"]
