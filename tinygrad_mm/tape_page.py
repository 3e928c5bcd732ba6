"""The page template of tape_html: plain HTML, CSS and JavaScript, nothing fetched from the network.

@PICTURE@ is the SVG from tape_draw, @DATA@ the JSON of the sweep's steps. Step highlights
the entry being swept (orange), the edges it sends gradient along and the inputs it
increments (yellow); the panel shows the upstream gradient and each increment.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
<style>
body { font-family: sans-serif; margin: 0; display: flex; }
#graph { flex: 1 1 auto; overflow: auto; height: 100vh; padding: 8px; }
#side { flex: 0 0 380px; height: 100vh; overflow: auto; border-left: 1px solid #ccc; padding: 10px;
        font-size: 13px; box-sizing: border-box; }
button { font-size: 14px; padding: 4px 14px; margin-right: 6px; }
.node.current rect { stroke: #ea580c; stroke-width: 4; fill: #fed7aa; }
.node.target rect { stroke: #ca8a04; stroke-width: 3; fill: #fef9c3; }
.node.swept rect { opacity: 0.55; }
.edge.active { stroke: #ea580c; stroke-width: 3; }
.arr { font-family: monospace; margin: 4px 0 10px 0; }
.strip { display: flex; height: 14px; border: 1px solid #999; margin-top: 3px; }
.strip span { flex: 1 1 0; }
h3 { margin: 10px 0 4px 0; font-size: 14px; }
</style></head>
<body>
<div id="graph">@NOTE@@PICTURE@</div>
<div id="side">
  <div><button id="step">Step</button><button id="reset">Reset</button></div>
  <p id="status">Before the sweep: press Step to sweep the last entry.</p>
  <div id="panel"></div>
</div>
<script>
const DATA = @DATA@;
let done = 0;
function fmt(x) { return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(4).replace(/\.?0+$/, ""); }
function color(v, m) {
  const t = m > 0 ? Math.max(-1, Math.min(1, v / m)) : 0;  // blue below zero, red above
  const c = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`;
}
function describe(a) {
  let s = `<div class="arr">shape (${a.shape.join(", ")}${a.shape.length === 1 ? "," : ""}) ${a.dtype}, |·| = ${fmt(a.norm)}`;
  if (a.values) s += `<br>values [${a.values.map(fmt).join(", ")}]`;
  if (a.strip) {
    const scale = Math.max(...a.strip.map(Math.abs));  // colours span the chunk means, not the extremes
    s += `<br>heat strip (${a.strip.length} chunk means; max |x| ${fmt(a.absmax)})<div class="strip">` +
         a.strip.map(v => `<span style="background:${color(v, scale)}"></span>`).join("") + "</div>";
  }
  return s + "</div>";
}
function nodeOf(edgeId) {
  const e = document.getElementById(edgeId);
  return e ? e.dataset.src : null;
}
function clearMarks() {
  document.querySelectorAll(".current, .target, .active").forEach(n => n.classList.remove("current", "target", "active"));
}
function show(k) {
  clearMarks();
  const st = DATA.steps[k];
  for (let j = 0; j < k; j++) { const n = document.getElementById("e" + DATA.steps[j].entry); if (n) n.classList.add("swept"); }
  const box = document.getElementById("e" + st.entry);
  if (box) { box.classList.add("current"); box.scrollIntoView({block: "nearest"}); }
  let s = `<h3 id="current">step ${k + 1} of ${DATA.steps.length}: #${st.entry} ${st.name}</h3>` +
          `<div>upstream gradient (d loss / d output of #${st.entry}):</div>` + describe(st.grad_out);
  if (!st.increments.length) s += "<div>(no input needs a gradient)</div>";
  for (const inc of st.increments) {
    const edge = document.getElementById(`x${st.entry}_${inc.pos}`);
    if (edge) {
      edge.classList.add("active");
      const src = document.getElementById(edge.dataset.src);
      if (src) src.classList.add("target");
    }
    s += `<div class="inc">${inc.kind === "grad" ? ".grad" : "adjoint"} of <b>${inc.to}</b> (input ${inc.pos}) +=</div>` + describe(inc);
  }
  document.getElementById("panel").innerHTML = s;
  document.getElementById("status").textContent = k + 1 === DATA.steps.length ?
    "Sweep finished: every entry on the path to the loss was swept." : `Swept ${k + 1} entries.`;
}
function step() { if (done < DATA.steps.length) { show(done); done += 1; } }
function reset() {
  done = 0; clearMarks();
  document.querySelectorAll(".swept").forEach(n => n.classList.remove("swept"));
  document.getElementById("panel").innerHTML = "";
  document.getElementById("status").textContent = "Before the sweep: press Step to sweep the last entry.";
}
document.getElementById("step").onclick = step;
document.getElementById("reset").onclick = reset;
document.getElementById("step").disabled = !DATA.steps.length;
const m = /step=(\d+)/.exec(location.hash);
if (m) for (let i = 0; i < +m[1]; i++) step();
</script>
</body></html>
"""
