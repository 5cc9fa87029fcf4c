// The segment flow page (/ui/insights/segment_flow): GET /api/insights/segment_flow drawn
// as a Sankey (nodes "segment @ boundary") and a transition matrix heatmap; below, time in
// segment (segment_time: a box per segment, survival curves, a table) and what the
// entrants of one segment did next (segment_next). The controls are kept in the address.
// Names from data reach the page as text only (textContent; UI.text inside plotly).
"use strict";

const Flow = {
  tiers: ["power_users", "regular", "occasional", "dormant"],
  colors: ["#3b5bdb", "#2b8a3e", "#f08c00", "#c92a2a", "#ae3ec9", "#1098ad", "#e8590c", "#5c7cfa"],
  special: {"(none)": "#adb5bd", "(new)": "#dee2e6"},
  color(state, states) {
    return Flow.special[state] || Flow.colors[states.indexOf(state) % Flow.colors.length];
  },
  rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
  },
  days(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1); },
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; },
  chosen() { return [...document.getElementById("segments").selectedOptions].map(o => o.value); },

  params() {
    const q = new URLSearchParams();
    const val = id => document.getElementById(id).value.trim();
    const chosen = Flow.chosen();
    if (chosen.length) q.set("segments", chosen.join(","));
    q.set("period", val("period"));
    q.set("periods", val("periods"));
    q.set("now", document.getElementById("now").checked);
    q.set("new", document.getElementById("new").checked);
    return q;
  },

  restore(q, names) {
    const set = (id, v) => { if (v !== null) document.getElementById(id).value = v; };
    set("period", q.get("period")); set("periods", q.get("periods"));
    if (q.get("now") !== null) document.getElementById("now").checked = q.get("now") === "true";
    if (q.get("new") !== null) document.getElementById("new").checked = q.get("new") !== "false";
    const given = (q.get("segments") || "").split(",").filter(Boolean);
    const wanted = new Set(given.length ? given : Flow.tiers.filter(t => names.includes(t)));
    for (const o of document.getElementById("segments").options) o.selected = wanted.has(o.value);
    if (q.get("next")) set("next-segment", q.get("next"));
    if (q.get("within")) set("within", q.get("within"));
    if (q.get("next_periods")) set("next-periods", q.get("next_periods"));
  },

  sankey(f) {
    // "(new) -> (new)" is left out of the drawing (users not there yet), so a (new) node is
    // as tall as the users who arrive from it; the matrices keep every count
    const s = f.sankey, last = f.boundaries.length - 1, newIndex = f.states.indexOf("(new)");
    const keep = s.links.source.map((src, i) =>
      !(s.node_state[src] === "(new)" && s.node_state[s.links.target[i]] === "(new)"));
    const pick = a => a.filter((_, i) => keep[i]);
    const used = new Set([...pick(s.links.source), ...pick(s.links.target)]);
    const colors = s.node_state.map(st => Flow.color(st, f.states));
    // columns by boundary, the states in their order top to bottom, each node placed by
    // the users above it in its column (plotly: node centres, 0 < x, y < 1)
    const value = s.nodes.map(() => 0), into = s.nodes.map(() => 0);
    pick(s.links.source).forEach((src, i) => { value[src] += pick(s.links.value)[i]; });
    pick(s.links.target).forEach((dst, i) => { into[dst] += pick(s.links.value)[i]; });
    const size = value.map((v, i) => Math.max(v, into[i]));
    const x = s.node_boundary.map(b => 0.001 + 0.998 * b / Math.max(last, 1));
    const y = s.nodes.map(() => 0.5);
    for (let k = 0; k <= last; k++) {
      const column = s.nodes.map((_, j) => j).filter(j => s.node_boundary[j] === k && used.has(j));
      const total = column.reduce((a, j) => a + size[j], 0) || 1;
      let above = 0;
      for (const j of column) {
        y[j] = Math.min(0.999, Math.max(0.001, 0.02 + 0.96 * (above + size[j] / 2) / total));
        above += size[j];
      }
    }
    UI.plot("sankey-chart", [{
      type: "sankey", arrangement: "snap",
      node: {label: s.node_state.map(UI.text),
        customdata: s.nodes.map(UI.text), color: colors, x, y, pad: 14, thickness: 14, line: {width: 0},
        hovertemplate: "%{customdata}: %{value} users<extra></extra>"},
      link: {source: pick(s.links.source), target: pick(s.links.target), value: pick(s.links.value),
        color: pick(s.links.source).map(i => Flow.rgba(colors[i], newIndex >= 0 && s.node_state[i] === "(new)" ? 0.2 : 0.35)),
        hovertemplate: "%{source.customdata} → %{target.customdata}: %{value} users<extra></extra>"},
    }], {margin: {l: 8, r: 8, t: 28, b: 8},
      annotations: f.boundaries.map((b, k) => ({x: k / Math.max(last, 1), y: 1.06, xref: "paper", yref: "paper",
        text: UI.text(b.label), showarrow: false, xanchor: k === 0 ? "left" : k === last ? "right" : "center",
        font: {size: 11, color: "#495057"}}))});
  },

  matrix(f) {
    const select = document.getElementById("step");
    const z = select.value === "all" ? f.totals : f.steps[Number(select.value)].matrix;
    const share = z.map(row => { const n = row.reduce((a, b) => a + b, 0); return row.map(v => n ? v / n : 0); });
    const labels = f.states.map(UI.text);
    UI.plot("matrix-chart", [{
      type: "heatmap", x: labels, y: labels, z: share, zmin: 0, zmax: 1,
      colorscale: [[0, "#f4f6fb"], [1, "#3b5bdb"]], text: z.map(row => row.map(String)),
      texttemplate: "%{text}", customdata: share,
      hovertemplate: "from %{y} to %{x}: %{text} users (%{z:.1%} of the row)<extra></extra>",
      colorbar: {tickformat: ".0%"}}],
    {margin: {l: 120, r: 12, t: 8, b: 90}, yaxis: {autorange: "reversed", title: {text: "from"}},
      xaxis: {title: {text: "to"}, side: "bottom"}});
  },

  steps(f) {
    const select = document.getElementById("step"), was = select.value;
    const label = i => f.boundaries[i].label;
    select.replaceChildren(UI.el("option", {value: "all"}, `all ${f.steps.length} steps`),
      ...f.steps.map((_, i) => UI.el("option", {value: String(i)}, `${label(i)} → ${label(i + 1)}`)));
    if ([...select.options].some(o => o.value === was)) select.value = was;
  },

  // the address holds both forms' controls: the flow's as last shown, and the entrants'
  // (next, within, next_periods), written by either form when it is shown
  keep() {
    history.replaceState(null, "", "?" + new URLSearchParams({...Object.fromEntries(Flow.shown || Flow.params()),
      next: document.getElementById("next-segment").value,
      within: document.getElementById("within").value.trim(),
      next_periods: document.getElementById("next-periods").value.trim()}));
  },

  async flow() {
    const q = Flow.params();
    Flow.shown = q;
    Flow.keep();
    const error = document.getElementById("flow-error");
    error.textContent = "";
    let f;
    try {
      f = await UI.api("/api/insights/segment_flow?" + q);
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    const first = Object.entries(f.first_snapshots).filter(([, at]) => at).map(([, at]) => at).sort()[0];
    document.getElementById("flow-summary").textContent =
      `${UI.num(f.users)} users were in ${f.segments.join(", ")} at one of the ${f.boundaries.length} ` +
      `boundaries (${f.boundaries[0].label} to ${f.boundaries[f.boundaries.length - 1].label}).` +
      (first ? ` Snapshots from ${UI.when(first)}.` : " No snapshot yet: refresh or backfill first.");
    if (f.users) Flow.sankey(f);
    else document.getElementById("sankey-chart").replaceChildren(UI.el("p", {class: "hint"}, "Nobody to show."));
    Flow.steps(f);
    document.getElementById("step").onchange = () => Flow.matrix(f);
    Flow.matrix(f);
    await Flow.time(f.segments);
  },

  async time(names) {
    const t = await UI.api("/api/insights/segment_time?segments=" + encodeURIComponent(names.join(",")));
    const withSpells = t.segments.filter(s => s.completed.count);
    UI.plot("time-chart", withSpells.map(s => ({
      type: "box", name: UI.text(s.segment), x: [UI.text(s.segment)],
      q1: [s.completed.p25], median: [s.completed.median], q3: [s.completed.p75],
      lowerfence: [s.completed.p10], upperfence: [s.completed.p90], mean: [s.completed.mean],
      marker: {color: Flow.color(s.segment, names)}, hoverinfo: "y"})),
    {showlegend: false, yaxis: {title: {text: "days in segment"}, rangemode: "tozero"}});
    UI.plot("survival-chart", t.segments.filter(s => s.survival.length).map(s => ({
      type: "scatter", mode: "lines", line: {shape: "hv", color: Flow.color(s.segment, names)},
      name: UI.text(s.segment), x: s.survival.map(p => p.days), y: s.survival.map(p => p.share),
      hovertemplate: UI.text(s.segment) + ": %{y:.0%} stayed %{x} days or more<extra></extra>"})),
    {xaxis: {title: {text: "days since entry"}}, yaxis: {tickformat: ".0%", range: [0, 1.02]},
      legend: {orientation: "h", y: -0.3}});
    UI.fill(document.querySelector("#time-table tbody"), t.segments.map(s => UI.el("tr", {"data-segment": s.segment},
      UI.el("td", {}, UI.segLink(s.segment)), UI.el("td", {class: "r"}, UI.num(s.completed.count)),
      UI.el("td", {class: "r median"}, Flow.days(s.completed.median)),
      UI.el("td", {class: "r"}, Flow.days(s.completed.p25)), UI.el("td", {class: "r"}, Flow.days(s.completed.p75)),
      UI.el("td", {class: "r"}, Flow.days(s.completed.mean)), UI.el("td", {class: "r"}, UI.num(s.open.count)),
      UI.el("td", {class: "r"}, Flow.days(s.open.median_age)),
      UI.el("td", {class: "r"}, s.km_median === null ? "–" : String(s.km_median)),
      UI.el("td", {class: "r"}, UI.num(s.censored)))));
  },

  async next() {
    const q = new URLSearchParams({segment: document.getElementById("next-segment").value,
      within_days: document.getElementById("within").value.trim(),
      period: document.getElementById("period").value,
      periods: document.getElementById("next-periods").value.trim()});
    Flow.keep();
    document.getElementById("next-unit").textContent = q.get("period") + "s";
    const error = document.getElementById("next-error");
    error.textContent = "";
    let n;
    try {
      n = await UI.api("/api/insights/segment_next?" + q);
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    document.getElementById("next-summary").textContent =
      `${UI.num(n.entrants)} users entered ${n.segment} from ${UI.when(n.from)} to now` +
      (n.open ? `; for ${UI.num(n.open)} of them ${n.within_days} days have not passed yet.` : ".");
    const rows = n.targets.slice().sort((a, b) => b.reached - a.reached || a.segment.localeCompare(b.segment));
    UI.fill(document.querySelector("#next-table tbody"), rows.map(t => UI.el("tr", {"data-segment": t.segment},
      UI.el("td", {}, UI.segLink(t.segment)), UI.el("td", {class: "r"}, UI.num(t.reached)),
      UI.el("td", {class: "r share"}, Flow.pct(t.share)), UI.el("td", {class: "r"}, Flow.days(t.median_days)),
      UI.el("td", {class: "r"}, UI.num(t.already)))));
  },
};

pages.segment_flow = async () => {
  const {segments} = await UI.api("/api/segments");
  const names = segments.map(s => s.name);
  const q = new URLSearchParams(location.search);
  // the list's order is the priority (first wins): the segments of the address in their
  // order, else the tiers in theirs, then the others
  const given = (q.get("segments") || "").split(",").filter(n => names.includes(n));
  const first = given.length ? given : Flow.tiers.filter(t => names.includes(t));
  const ordered = [...first, ...names.filter(n => !first.includes(n))];
  document.getElementById("segments").append(...ordered.map(n => UI.el("option", {value: n}, n)));
  document.getElementById("next-segment").append(...names.map(n => UI.el("option", {value: n}, n)));
  if (!q.get("next") && names.includes("trial_likely_to_convert")) q.set("next", "trial_likely_to_convert");
  Flow.restore(q, names);
  document.getElementById("flow-controls").addEventListener("submit", ev => { ev.preventDefault(); Flow.flow(); Flow.next(); });
  document.getElementById("next-controls").addEventListener("submit", ev => { ev.preventDefault(); Flow.next(); });
  await Promise.all([Flow.flow(), Flow.next()]);
};
