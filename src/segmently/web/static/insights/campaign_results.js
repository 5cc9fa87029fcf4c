// The campaign results page (/ui/insights/campaign_results): a campaign picker (GET
// /api/campaigns; the campaign and as-of day kept in the address), then GET
// /api/insights/campaign_results drawn as the arms table, the verdict with the SRM and
// "too early" flags, the lift as bars with 95% error bars, the daily cumulative conversion
// per arm and the secondary metrics. Text from data reaches the page through textContent
// only (UI.el) and plotly through UI.text.
"use strict";

const Results = {
  colors: {treatment: "#3b5bdb", holdout: "#868e96"},
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; },
  pp(v) { return v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + (100 * v).toFixed(1); },
  rel(v) { return v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + (100 * v).toFixed(0) + "%"; },
  p(v) { return v === null || v === undefined ? "–" : v < 0.0001 ? "< 0.0001" : v.toFixed(4); },
  range(i, fmt) { return i && i.low !== null ? `${fmt(i.low)} … ${fmt(i.high)}` : "–"; },

  params() {
    const q = new URLSearchParams();
    q.set("campaign", document.getElementById("campaign").value);
    const day = document.getElementById("as-of").value;
    if (day) q.set("as_of", day + "T00:00:00");
    q.set("min_users", document.getElementById("min-users").value || "100");
    return q;
  },

  verdict(r) {
    const node = document.getElementById("verdict");
    const lift = r[r.primary || "raw"];
    const words = {
      positive: "Significant lift: the treatment converts more than the holdout.",
      negative: "Significant drop: the treatment converts less than the holdout.",
      inconclusive: "No significant difference yet (the always-valid test has not decided).",
      too_early: "Too early to say.",
    };
    node.className = r.verdict === "positive" ? "ok" : r.verdict === "negative" ? "error" : "hint";
    node.replaceChildren(UI.el("strong", {}, words[r.verdict] || r.verdict),
      lift ? ` Lift ${Results.pp(lift.absolute.estimate)} pp (${Results.rel(lift.relative.estimate)}),` +
        ` always-valid p ${Results.p(lift.sequential.p_value)}.` : "");
    const early = document.getElementById("too-early");
    early.hidden = !r.too_early.flag;
    early.textContent = r.too_early.flag ? `Too early: ${r.too_early.reasons.join("; ")} ` +
      `(a verdict needs ${r.too_early.min_users_per_arm} users per arm and ` +
      `${r.too_early.min_conversions_per_arm} converted and not converted in each).` : "";
    const srm = document.getElementById("srm");
    const s = r.srm;
    srm.hidden = s.p_value === null;
    srm.className = s.flagged ? "error" : "hint";
    srm.textContent = s.p_value === null ? "" : (s.flagged ? "Sample ratio mismatch: " : "Sample ratio: ") +
      `${Results.pct(s.observed_holdout_share)} held out where ${Results.pct(s.expected_holdout_share)} ` +
      `was expected (chi-square ${s.chi2.toFixed(2)}, p ${Results.p(s.p_value)}` +
      (s.flagged ? `, below ${s.threshold}: the arms are not what the hash draws; do not trust the lift).` : ").");
    document.getElementById("goal").textContent =
      `Goal: ${JSON.stringify(r.goal.rule)} within ${r.goal.within_days} days, judged by ${r.goal.judged}; as of ${UI.when(r.as_of)}.`;
  },

  arms(r) {
    UI.fill(document.querySelector("#arms tbody"), r.arms.map(a => UI.el("tr", {"data-arm": a.arm},
      UI.el("td", {}, a.arm), UI.el("td", {class: "r assigned"}, UI.num(a.assigned)),
      UI.el("td", {class: "r shown"}, UI.num(r.shown[a.arm])),
      UI.el("td", {class: "r converted"}, UI.num(a.converted)),
      UI.el("td", {class: "r rate"}, Results.pct(a.rate)),
      UI.el("td", {class: "r"}, `${UI.num(a.converted_complete)} of ${UI.num(a.complete)}`),
      UI.el("td", {class: "r"}, Results.pct(a.rate_complete)))));
  },

  lift(r) {
    const card = document.getElementById("lift-card");
    card.hidden = !r.raw;
    if (!r.raw) return;
    const rows = [
      ["fixed-horizon", r.raw.absolute, r.raw.relative, r.raw.p_value],
      ["CUPED" + (r.cuped.used ? " (used)" : " (not used: narrows < 5%)"), r.cuped.absolute, r.cuped.relative, r.cuped.p_value],
      ["always valid (decides)", r[r.primary].sequential.absolute, r[r.primary].sequential.relative, r[r.primary].sequential.p_value],
    ];
    const y = rows.map(x => 100 * x[1].estimate);
    UI.plot("lift-chart", [{
      type: "bar", orientation: "h", y: rows.map(x => UI.text(x[0])), x: y,
      marker: {color: rows.map((x, i) => i === 2 ? "#3b5bdb" : "#a5b4fc")},
      error_x: {type: "data", symmetric: false, color: "#212529", thickness: 1.5,
        array: rows.map(x => 100 * (x[1].high - x[1].estimate)),
        arrayminus: rows.map(x => 100 * (x[1].estimate - x[1].low))},
      hovertemplate: "%{y}: %{x:.2f} pp<extra></extra>"}],
      {margin: {l: 230, r: 16, t: 8, b: 40}, yaxis: {autorange: "reversed"},
        xaxis: {title: {text: "lift (percentage points)"}, zeroline: true, zerolinewidth: 2}});
    UI.fill(document.querySelector("#lift tbody"), rows.map(([name, abs, rel, p]) => UI.el("tr", {},
      UI.el("td", {}, name), UI.el("td", {class: "r"}, Results.pp(abs.estimate)),
      UI.el("td", {class: "r"}, Results.range(abs, Results.pp)), UI.el("td", {class: "r"}, Results.rel(rel.estimate)),
      UI.el("td", {class: "r"}, Results.range(rel, Results.rel)), UI.el("td", {class: "r"}, Results.p(p)))));
    document.getElementById("method").textContent = r.method;
  },

  daily(r) {
    const d = r.daily;
    document.getElementById("daily-card").hidden = d.days.length === 0;
    if (!d.days.length) return;
    UI.plot("daily-chart", ["treatment", "holdout"].map(arm => ({
      type: "scatter", mode: "lines", name: arm, line: {color: Results.colors[arm], width: 2},
      x: d.days, y: d[arm].rate, customdata: d[arm].converted.map((c, i) => [c, d[arm].assigned[i]]),
      hovertemplate: arm + " %{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]})<extra></extra>"})),
      {yaxis: {tickformat: ".0%", rangemode: "tozero"}, legend: {orientation: "h", y: -0.2}});
  },

  secondary(r) {
    document.getElementById("secondary-card").hidden = !r.secondary.length;
    const fmt = m => m.kind === "rate" ? Results.pct : v => UI.value(v);
    const diff = m => m.kind === "rate" ? Results.pp : v => UI.value(v);
    UI.fill(document.querySelector("#secondary tbody"), r.secondary.map(m => UI.el("tr", {"data-metric": m.metric},
      UI.el("td", {title: m.description}, m.metric.replace(/_/g, " ")),
      UI.el("td", {class: "r"}, `${fmt(m)(m.treatment.value)} (${UI.num(m.treatment.n)})`),
      UI.el("td", {class: "r"}, `${fmt(m)(m.holdout.value)} (${UI.num(m.holdout.n)})`),
      UI.el("td", {class: "r"}, m.absolute ? diff(m)(m.absolute.estimate) + (m.kind === "rate" ? " pp" : "") : "–"),
      UI.el("td", {class: "r"}, Results.range(m.absolute, diff(m))),
      UI.el("td", {class: "r"}, Results.p(m.p_value)))));
  },
};

pages.campaign_results = async () => {
  const form = document.getElementById("results-controls");
  const error = document.getElementById("results-error");
  const picker = document.getElementById("campaign");
  const {campaigns} = await UI.api("/api/campaigns");
  // campaigns with a goal; those with users assigned first (the default is the first)
  const withGoal = campaigns.filter(c => c.goal).sort((a, b) =>
    ((b.assigned + b.held_out) > 0) - ((a.assigned + a.held_out) > 0));
  document.getElementById("no-goal").hidden = withGoal.length > 0;
  picker.replaceChildren(...withGoal.map(c => UI.el("option", {value: c.name}, c.name)));
  const q = new URLSearchParams(location.search);
  if (q.get("campaign") && withGoal.some(c => c.name === q.get("campaign"))) picker.value = q.get("campaign");
  if (q.get("as_of")) document.getElementById("as-of").value = q.get("as_of").slice(0, 10);
  if (q.get("min_users")) document.getElementById("min-users").value = q.get("min_users");
  const show = async () => {
    error.textContent = "";
    if (!picker.value) return;
    const params = Results.params();
    history.replaceState(null, "", "?" + params.toString());
    let r;
    try {
      r = await UI.api("/api/insights/campaign_results?" + params.toString());
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    document.getElementById("results").hidden = false;
    Results.verdict(r);
    Results.arms(r);
    Results.lift(r);
    Results.daily(r);
    Results.secondary(r);
  };
  picker.addEventListener("change", show);
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  await show();
};
