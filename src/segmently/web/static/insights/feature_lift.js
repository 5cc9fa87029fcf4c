// The feature lift page (/ui/insights/feature_lift): GET /api/insights/discovery_rule (its
// answer holds the feature_lift table it was made from) with the outcome, usage days,
// feature source and minimum support chosen (kept in the address): a forest plot of odds
// ratios with their intervals, the table with q-values and support, for a segment outcome
// the members' usage ratios (segment_features), and the "uses X and Y but not Z" card that
// saves its segment (POST /api/segments) and then its campaign (POST /api/campaigns).
// Names from data reach the page as text only (textContent; UI.text inside plotly).
"use strict";

const Lift = {
  ids: ["outcome", "segment", "days", "features", "min_users"],
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; },
  fmt(v) { return v === null || v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); },
  p(v) { return v < 0.001 ? v.toExponential(1) : v.toFixed(3); },

  params() {
    const q = new URLSearchParams();
    for (const id of Lift.ids) {
      const v = document.getElementById(id).value.trim();
      if (id === "segment" && document.getElementById("outcome").value !== "segment") continue;
      if (v) q.set(id, v);
    }
    return q;
  },
  restore(q) {
    for (const id of Lift.ids) if (q.get(id)) document.getElementById(id).value = q.get(id);
    Lift.toggle();
  },
  toggle() { document.getElementById("segment").hidden = document.getElementById("outcome").value !== "segment"; },

  forest(id, rows, estimate, title) {
    const shown = rows.slice().reverse();  // the best ranked on top
    const y = shown.map(r => UI.text(r.feature));
    const trace = (sig) => {
      const part = shown.filter(r => r.significant === sig);
      return {type: "scatter", mode: "markers", name: sig ? "significant (q < 0.05)" : "not significant",
        y: part.map(r => UI.text(r.feature)), x: part.map(r => r[estimate]),
        error_x: {type: "data", symmetric: false, array: part.map(r => r.ci_high - r[estimate]),
          arrayminus: part.map(r => r[estimate] - r.ci_low), color: "#3b5bdb", thickness: 1.5, width: 4},
        marker: {size: 10, color: sig ? "#3b5bdb" : "#fff", line: {color: "#3b5bdb", width: 2}},
        customdata: part.map(r => [Lift.fmt(r.ci_low), Lift.fmt(r.ci_high), Lift.p(r.q_value), r.users]),
        hovertemplate: "%{y}: %{x:.2f} [%{customdata[0]}, %{customdata[1]}], q %{customdata[2]}, " +
          "%{customdata[3]} users<extra></extra>"};
    };
    UI.plot(id, [trace(true), trace(false)], {
      xaxis: {type: "log", title: {text: title}}, yaxis: {type: "category", categoryarray: y, categoryorder: "array"},
      margin: {l: 170, r: 12, t: 8, b: 44}, legend: {orientation: "h", y: -0.18},
      shapes: [{type: "line", x0: 1, x1: 1, yref: "paper", y0: 0, y1: 1, line: {color: "#868e96", dash: "dot"}}]});
  },

  table(lift) {
    UI.fill(document.querySelector("#lift-table tbody"), lift.features.map(r => UI.el("tr", {"data-feature": r.feature},
      UI.el("td", {class: "text"}, r.feature), UI.el("td", {class: "r"}, UI.num(r.users)),
      UI.el("td", {class: "r"}, Lift.pct(r.share)), UI.el("td", {class: "r"}, Lift.pct(r.share_of_positives)),
      UI.el("td", {class: "r"}, Lift.pct(r.rate_with)), UI.el("td", {class: "r"}, Lift.pct(r.rate_without)),
      UI.el("td", {class: "r odds"}, Lift.fmt(r.odds_ratio) + (r.corrected ? "*" : "")),
      UI.el("td", {class: "r"}, `${Lift.fmt(r.ci_low)} – ${Lift.fmt(r.ci_high)}`),
      UI.el("td", {class: "r"}, Lift.p(r.p_value)), UI.el("td", {}, r.test),
      UI.el("td", {class: r.significant ? "r ok" : "r"}, Lift.p(r.q_value)))));
    const out = lift.left_out.map(x => `${x.feature} (${x.users})`).join(", ");
    document.getElementById("left-out").textContent = (lift.features.some(r => r.corrected)
      ? "* a cell of its table is zero: 0.5 added to every cell (Haldane). " : "")
      + (out ? `Used by fewer than ${lift.min_users} users, not tested: ${out}.` : "");
    document.getElementById("lift-summary").textContent =
      `${lift.definition}: ${UI.num(lift.positives)} of ${UI.num(lift.population)} users (${Lift.pct(lift.rate)}).`;
  },

  discovery(d) {
    const text = document.getElementById("discovery-text");
    const save = document.getElementById("save-discovery"), add = document.getElementById("add-campaign");
    const result = document.getElementById("discovery-result");
    result.textContent = ""; result.className = "";
    save.disabled = add.disabled = true;
    document.getElementById("discovery-rule").textContent = d.found ? JSON.stringify(d.segment.rule, null, 2) : "";
    document.getElementById("discovery-campaign").textContent = d.found ? JSON.stringify(d.campaign, null, 2) : "";
    if (!d.found) { text.className = "hint"; text.textContent = `No suggestion: ${d.reason}.`; return; }
    text.className = "";
    text.replaceChildren(
      "Most of the outcome's users use ", UI.el("strong", {}, d.x.feature), ` (${Lift.pct(d.x.share_of_positives)}) and `,
      UI.el("strong", {}, d.y.feature), ` (${Lift.pct(d.y.share_of_positives)}); `,
      UI.el("strong", {}, d.z.feature), ` goes with it far more (odds ratio ${Lift.fmt(d.z.odds_ratio)}, q ${Lift.p(d.z.q_value)}) `
        + `but only ${Lift.pct(d.z.share_of_positives)} of them use it. `,
      UI.el("span", {class: "pill"}, `${UI.num(d.segment.size)} users`),
      ` use ${d.x.feature} and ${d.y.feature} now and never used ${d.z.feature}: segment `,
      UI.el("code", {}, d.segment.name), ", with a one-step tour pointing at ", d.z.feature, ".");
    save.disabled = false;
    save.onclick = async () => {
      save.disabled = true;
      try {
        const made = await UI.api("/api/segments", {method: "POST", body: JSON.stringify(
          {name: d.segment.name, description: d.segment.description, rule: d.segment.rule})});
        result.className = "ok";
        result.replaceChildren("Saved ", UI.segLink(made.name), ". Now add the campaign, or edit it first.");
        add.disabled = false;
      } catch (err) {
        result.className = "error"; result.textContent = err.message; save.disabled = false;
      }
    };
    add.onclick = async () => {
      add.disabled = true;
      try {
        const made = await UI.api("/api/campaigns", {method: "POST", body: JSON.stringify(d.campaign)});
        result.className = "ok";
        result.replaceChildren("Campaign ", UI.el("a", {href: "/ui/campaigns/" + encodeURIComponent(made.name)}, made.name),
          ` saved for ${d.segment.name}: tag the element of ${d.z.feature} in your product with `,
          UI.el("code", {}, d.campaign.content.steps[0].selector), " for the tour to find it.");
      } catch (err) {
        result.className = "error"; result.textContent = err.message; add.disabled = false;
      }
    };
  },
};

pages.feature_lift = async () => {
  const form = document.getElementById("lift-controls");
  const error = document.getElementById("lift-error");
  const catalog = await UI.api("/api/catalog");
  document.getElementById("segment").append(...catalog.segments.map(s => UI.el("option", {value: s}, s)));
  if (!catalog.features.length) document.getElementById("features").value = "events";
  Lift.restore(new URLSearchParams(location.search));
  document.getElementById("outcome").addEventListener("change", Lift.toggle);
  const show = async () => {
    error.textContent = "";
    const q = Lift.params();
    history.replaceState(null, "", "?" + q.toString());
    let d;
    try {
      d = await UI.api("/api/insights/discovery_rule?" + q.toString());
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    Lift.forest("forest-chart", d.lift.features, "odds_ratio", "odds ratio of the outcome (log scale)");
    Lift.table(d.lift);
    Lift.discovery(d);
    const card = document.getElementById("members-card");
    card.hidden = d.lift.outcome !== "segment";
    if (!card.hidden) {
      const s = new URLSearchParams({segment: d.lift.segment, features: d.lift.features_from,
        min_users: String(d.lift.min_users)});
      const sf = await UI.api("/api/insights/segment_features?" + s.toString());
      Lift.forest("ratio-chart", sf.features, "ratio", "share of members using it / share of other users (log scale)");
    }
  };
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  await show();
};
