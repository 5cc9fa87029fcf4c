// The stickiness page (/ui/insights/stickiness): GET /api/insights/stickiness,
// /api/insights/feature_stickiness and /api/insights/lifecycle with the controls'
// parameters (kept in the address), drawn as DAU/WAU/MAU lines, the ratios and the
// days-active-per-week distribution per group, per-feature adoption and stickiness bars
// (most popular first), weekly users per feature and lifecycle stacked bars. Names from
// data reach the page as text only (textContent; UI.text inside plotly).
"use strict";

const Sticky = {
  colors: ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00", "#c92a2a", "#5c7cfa"],
  color(i) { return Sticky.colors[i % Sticky.colors.length]; },
  day(iso) { return iso.slice(0, 10); },
  legend: {orientation: "h", y: -0.2},

  params() {
    const val = id => document.getElementById(id).value.trim();
    const chosen = [...document.getElementById("segments").selectedOptions].map(o => o.value);
    const q = new URLSearchParams({days: val("days"), weeks: val("weeks"), period: val("lc-period"),
      periods: val("lc-periods")});
    if (document.getElementById("partial").checked) q.set("partial", "true");
    if (chosen.length) q.set("segments", chosen.join(","));
    return q;
  },

  restore(q) {
    const set = (id, v) => { if (v !== null) document.getElementById(id).value = v; };
    set("days", q.get("days")); set("weeks", q.get("weeks"));
    set("lc-period", q.get("period")); set("lc-periods", q.get("periods"));
    document.getElementById("partial").checked = q.get("partial") === "true";
    const wanted = new Set((q.get("segments") || "").split(",").filter(Boolean));
    for (const o of document.getElementById("segments").options) o.selected = wanted.has(o.value);
  },

  one(answer, name) { return answer.groups.find(g => g.name === name) || answer.groups[0]; },

  active(s, name) {
    const g = Sticky.one(s, name), x = s.days.map(Sticky.day);
    UI.plot("active-chart", [["mau", "MAU", "#adb5bd"], ["wau", "WAU", "#748ffc"], ["dau", "DAU", "#3b5bdb"]]
      .map(([key, label, color]) => ({type: "scatter", mode: "lines", name: label, x, y: g[key],
        line: {color}, hovertemplate: `%{x}: %{y} ${label}<extra></extra>`})),
    {legend: Sticky.legend, yaxis: {rangemode: "tozero"}});
  },

  ratios(s) {
    const x = s.days.map(Sticky.day);
    UI.plot("ratio-chart", s.groups.flatMap((g, i) => [
      {type: "scatter", mode: "lines", name: UI.text(g.name), x, y: g.dau_mau, legendgroup: `g${i}`,
        line: {color: Sticky.color(i)}, hovertemplate: UI.text(g.name) + " %{x}: DAU/MAU %{y:.1%}<extra></extra>"},
      {type: "scatter", mode: "lines", name: UI.text(g.name) + " WAU/MAU", x, y: g.wau_mau,
        legendgroup: `g${i}`, showlegend: false, line: {color: Sticky.color(i), dash: "dot"},
        hovertemplate: UI.text(g.name) + " %{x}: WAU/MAU %{y:.1%}<extra></extra>"}]),
    {legend: Sticky.legend, yaxis: {tickformat: ".0%", range: [0, 1.05]}});
  },

  days(s) {
    UI.plot("days-chart", s.groups.map((g, i) => ({type: "bar", name: UI.text(g.name),
      x: [1, 2, 3, 4, 5, 6, 7], y: g.days_per_week.share, marker: {color: Sticky.color(i)},
      customdata: g.days_per_week.histogram,
      hovertemplate: UI.text(g.name) + ": %{x} days, %{y:.1%} of user-weeks (%{customdata})<extra></extra>"})),
    {barmode: "group", legend: {orientation: "h", y: -0.35}, margin: {l: 48, r: 12, t: 8, b: 60},
      xaxis: {title: {text: "days active in the week"}, dtick: 1}, yaxis: {tickformat: ".0%"}});
  },

  features(f, name) {
    const names = f.features.map(UI.text);
    const bars = (key, fmt) => f.groups.map((g, i) => {
      const by = Object.fromEntries(g.features.map(r => [r.feature, r]));
      return {type: "bar", orientation: "h", name: UI.text(g.name), y: names,
        x: f.features.map(n => by[n][key]), marker: {color: Sticky.color(i)},
        customdata: f.features.map(n => [by[n].users, g.active_users]),
        hovertemplate: UI.text(g.name) + " %{y}: %{x:" + fmt + "} (%{customdata[0]} of %{customdata[1]} users)<extra></extra>"};
    });
    const layout = title => ({barmode: "group", legend: Sticky.legend, margin: {l: 140, r: 12, t: 28, b: 36},
      title: {text: title, font: {size: 13}}, yaxis: {autorange: "reversed"}, xaxis: {tickformat: ".0%"}});
    UI.plot("adoption-chart", bars("adoption", ".1%"), layout("Adoption"));
    UI.plot("feature-stickiness-chart", bars("stickiness", ".1%"), layout("Stickiness (DAU/MAU)"));
    const g = Sticky.one(f, name), x = f.weeks.map(Sticky.day);
    UI.plot("feature-weekly-chart", g.features.map((r, i) => ({type: "scatter", mode: "lines+markers",
      name: UI.text(r.feature), x, y: r.weekly, line: {color: Sticky.color(i)},
      hovertemplate: UI.text(r.feature) + ", week of %{x}: %{y} users<extra></extra>"})),
    {legend: Sticky.legend, yaxis: {rangemode: "tozero"}});
  },

  lifecycle(l, name) {
    const g = Sticky.one(l, name), x = g.periods.map(p => Sticky.day(p.start));
    const states = [["new", "#2b8a3e"], ["returning", "#3b5bdb"], ["resurrected", "#f08c00"], ["dormant", "#c92a2a"]];
    UI.plot("lifecycle-chart", states.map(([state, color]) => ({type: "bar", name: state, x,
      y: g.periods.map(p => p[state]), marker: {color},
      hovertemplate: `%{x}: %{y} ${state}<extra></extra>`})),
    {barmode: "relative", legend: Sticky.legend, xaxis: {type: "category"}});
  },
};

pages.stickiness = async () => {
  const form = document.getElementById("stickiness-controls");
  const error = document.getElementById("stickiness-error");
  const group = document.getElementById("group");
  const {segments} = await UI.api("/api/segments");
  document.getElementById("segments").append(...segments.map(s => UI.el("option", {value: s.name}, s.name)));
  Sticky.restore(new URLSearchParams(location.search));
  let got = null;
  const draw = () => {
    const [s, f, l] = got;
    Sticky.active(s, group.value); Sticky.ratios(s); Sticky.days(s);
    Sticky.features(f, group.value); Sticky.lifecycle(l, group.value);
    for (const span of document.querySelectorAll(".group-name")) span.textContent = Sticky.one(s, group.value).name;
  };
  const show = async () => {
    error.textContent = "";
    const q = Sticky.params();
    history.replaceState(null, "", "?" + q.toString());
    const base = new URLSearchParams(q), life = new URLSearchParams(q);
    for (const k of ["period", "periods"]) base.delete(k);
    for (const k of ["days", "weeks"]) life.delete(k);
    try {
      got = await Promise.all([UI.api("/api/insights/stickiness?" + base), UI.api("/api/insights/feature_stickiness?" + base),
        UI.api("/api/insights/lifecycle?" + life)]);
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    const kept = group.value;
    group.replaceChildren(...got[0].groups.map(g => UI.el("option", {value: g.name}, g.name)));
    if (got[0].groups.some(g => g.name === kept)) group.value = kept;
    draw();
  };
  group.addEventListener("change", () => { if (got) draw(); });
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  await show();
};
