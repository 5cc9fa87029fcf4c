// The retention page (/ui/insights/retention): GET /api/insights/retention with the
// controls' parameters (kept in the address, so a link shows the same table), drawn as
// one retention curve per group and the chosen group's cohorts as a heatmap and a table.
// Names from data reach the page as text only (textContent; UI.text inside plotly).
"use strict";

const Retention = {
  colors: ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00", "#c92a2a", "#5c7cfa"],
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; },
  label(iso, period) { return period === "month" ? iso.slice(0, 7) : iso.slice(0, 10); },

  params() {
    const q = new URLSearchParams();
    const val = id => document.getElementById(id).value.trim();
    q.set("period", val("period"));
    q.set("cohorts", val("cohorts"));
    q.set("periods", val("periods"));
    q.set("mode", val("mode"));
    if (val("start") === "event" && val("start-event")) q.set("start_event", val("start-event"));
    if (val("start") === "segment" && val("start-segment")) q.set("start_segment", val("start-segment"));
    if (val("return") === "event" && val("return-event")) q.set("return_event", val("return-event"));
    const chosen = [...document.getElementById("segments").selectedOptions].map(o => o.value);
    if (chosen.length) q.set("segments", chosen.join(","));
    return q;
  },

  restore(q) {  // the controls from the address
    const set = (id, v) => { if (v !== null) document.getElementById(id).value = v; };
    set("period", q.get("period")); set("cohorts", q.get("cohorts"));
    set("periods", q.get("periods")); set("mode", q.get("mode"));
    if (q.get("start_event")) { set("start", "event"); set("start-event", q.get("start_event")); }
    if (q.get("start_segment")) { set("start", "segment"); set("start-segment", q.get("start_segment")); }
    if (q.get("return_event")) { set("return", "event"); set("return-event", q.get("return_event")); }
    const wanted = new Set((q.get("segments") || "").split(",").filter(Boolean));
    for (const o of document.getElementById("segments").options) o.selected = wanted.has(o.value);
  },

  toggles() {
    const start = document.getElementById("start").value;
    document.getElementById("start-event").hidden = start !== "event";
    document.getElementById("start-segment").hidden = start !== "segment";
    document.getElementById("return-event").hidden = document.getElementById("return").value !== "event";
  },

  curves(r) {
    UI.plot("curves-chart", r.groups.map((g, i) => ({
      type: "scatter", mode: "lines+markers", name: UI.text(g.name),
      line: {color: Retention.colors[i % Retention.colors.length]},
      x: g.curve.map(c => c.period), y: g.curve.map(c => c.rate),
      customdata: g.curve.map(c => [c.retained, c.size]),
      hovertemplate: UI.text(g.name) + "<br>period %{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]})<extra></extra>",
    })), {xaxis: {title: {text: `${r.period}s after the start`}, dtick: 1},
      yaxis: {tickformat: ".0%", range: [0, 1.05]}, legend: {orientation: "h", y: -0.25}});
  },

  cohorts(r, name) {
    const g = r.groups.find(x => x.name === name) || r.groups[0];
    const ks = [...Array(r.periods + 1).keys()];
    const rows = g.cohorts.map(c => `${Retention.label(c.start, r.period)} (${UI.num(c.size)})`);
    const partial = (c, k) => k >= c.complete && c.counts[k] !== null;
    UI.plot("cohort-chart", [{
      type: "heatmap", x: ks.map(k => `${k}`), y: rows,
      z: g.cohorts.map(c => c.rates), zmin: 0, zmax: 1,
      colorscale: [[0, "#f4f6fb"], [1, "#3b5bdb"]], xgap: 2, ygap: 2,
      text: g.cohorts.map(c => c.rates.map((v, k) => v === null ? "" : Retention.pct(v) + (partial(c, k) ? "…" : ""))),
      texttemplate: "%{text}",
      customdata: g.cohorts.map(c => c.counts.map((n, k) => [n === null ? "" : n, c.size,
        partial(c, k) ? " (so far)" : ""])),
      hovertemplate: "%{y}, period %{x}: %{customdata[0]} of %{customdata[1]}%{customdata[2]}<extra></extra>",
      colorbar: {tickformat: ".0%"}}],
      {margin: {l: 150, r: 12, t: 8, b: 40}, yaxis: {autorange: "reversed", type: "category"},
        xaxis: {title: {text: `${r.period}s after the start`}, type: "category"}});
    const table = document.getElementById("cohorts-table");
    table.tHead.replaceChildren(UI.el("tr", {}, UI.el("th", {}, "Cohort"), UI.el("th", {class: "r"}, "Users"),
      ...ks.map(k => UI.el("th", {class: "r"}, `${r.period} ${k}`))));
    UI.fill(table.tBodies[0], g.cohorts.map(c => UI.el("tr", {},
      UI.el("td", {}, Retention.label(c.start, r.period)), UI.el("td", {class: "r"}, UI.num(c.size)),
      ...ks.map(k => UI.el("td", {class: "r", title: c.counts[k] === null ? "" : `${c.counts[k]} of ${c.size}`},
        c.counts[k] === null ? "" : Retention.pct(c.rates[k]) + (partial(c, k) ? "…" : ""))))));
  },
};

pages.retention = async () => {
  const form = document.getElementById("retention-controls");
  const error = document.getElementById("retention-error");
  const group = document.getElementById("group");
  const catalog = await UI.api("/api/catalog");
  document.getElementById("event-names").append(...catalog.events.map(e => UI.el("option", {value: e.name})));
  document.getElementById("start-segment").append(...catalog.segments.map(s => UI.el("option", {value: s}, s)));
  document.getElementById("segments").append(...catalog.segments.map(s => UI.el("option", {value: s}, s)));
  Retention.restore(new URLSearchParams(location.search));
  Retention.toggles();
  let answer = null;
  const show = async () => {
    error.textContent = "";
    const q = Retention.params();
    history.replaceState(null, "", "?" + q.toString());
    try {
      answer = await UI.api("/api/insights/retention?" + q.toString());
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    const kept = group.value;
    group.replaceChildren(...answer.groups.map(g => UI.el("option", {value: g.name}, g.name)));
    if (answer.groups.some(g => g.name === kept)) group.value = kept;
    Retention.curves(answer);
    Retention.cohorts(answer, group.value);
  };
  for (const id of ["start", "return"]) document.getElementById(id).addEventListener("change", Retention.toggles);
  group.addEventListener("change", () => { if (answer) Retention.cohorts(answer, group.value); });
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  await show();
};
