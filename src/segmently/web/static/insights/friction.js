// The friction page (/ui/insights/friction): GET /api/insights/friction with the steps,
// window, range and segments chosen (kept in the address), drawn as funnel bars per
// segment, a table of steps with conversion, drop-off and times, the time to convert, and
// what stuck users did instead; "Save as a segment" posts a step's stuck_rule to
// /api/segments. Names from data reach the page as text only (textContent; UI.text in plotly).
"use strict";

const Friction = {
  colors: ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00"],
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; },
  duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s.toFixed(0) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    if (s < 86400) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  },
  groupName(f) { return f.segment === null ? "everyone" : f.segment; },

  stepInput(value = "") {
    const input = UI.el("input", {list: "event-names", placeholder: "event name", size: 18,
      class: "step-event", "aria-label": "Step event", value});
    const remove = UI.el("button", {type: "button", class: "small-btn", title: "Remove this step",
      onclick: () => { if (document.querySelectorAll("#steps .step").length > 2) wrap.remove(); }}, "×");
    const wrap = UI.el("span", {class: "step"}, input, remove);
    return wrap;
  },
  setSteps(names) {
    document.getElementById("steps").replaceChildren(...names.map(n => Friction.stepInput(n)));
  },
  steps() { return [...document.querySelectorAll("#steps .step-event")].map(i => i.value.trim()).filter(Boolean); },

  params() {
    const q = new URLSearchParams();
    q.set("steps", Friction.steps().join(","));
    for (const id of ["window", "unit", "range"]) q.set(id, document.getElementById(id).value.trim());
    const chosen = [...document.getElementById("segments").selectedOptions].map(o => o.value);
    if (chosen.length) q.set("segments", chosen.join(","));
    return q;
  },
  restore(q, fallback) {
    Friction.setSteps(q.get("steps") ? q.get("steps").split(",") : fallback);
    for (const id of ["window", "unit", "range"]) if (q.get(id)) document.getElementById(id).value = q.get(id);
    const wanted = new Set((q.get("segments") || "").split(",").filter(Boolean));
    for (const o of document.getElementById("segments").options) o.selected = wanted.has(o.value);
  },

  chart(r) {
    const labels = r.steps.map((s, i) => `${i + 1}. ${UI.text(s)}`);
    UI.plot("funnel-chart", r.funnels.map((f, i) => ({
      type: "bar", name: UI.text(Friction.groupName(f)), x: labels, y: f.steps.map(s => s.users),
      marker: {color: Friction.colors[i % Friction.colors.length]},
      text: f.steps.map(s => Friction.pct(s.conversion_from_first)), textposition: "outside",
      customdata: f.steps.map(s => [Friction.pct(s.conversion_from_previous), s.dropped]),
      hovertemplate: "%{x}: %{y} users<br>%{customdata[0]} of the previous step, %{customdata[1]} dropped<extra>" +
        UI.text(Friction.groupName(f)) + "</extra>",
    })), {barmode: "group", yaxis: {rangemode: "tozero"}, legend: {orientation: "h", y: -0.2}});
    UI.plot("time-chart", r.funnels.map((f, i) => {  // bars: median; whiskers up to p90
      const steps = f.steps.slice(1), hours = v => v === null ? null : v / 3600;
      const name = UI.text(Friction.groupName(f));
      return {type: "bar", name, x: steps.map(s => `${s.step}. ${UI.text(s.event)}`),
        y: steps.map(s => hours(s.median_seconds)),
        error_y: {type: "data", symmetric: false, arrayminus: steps.map(() => 0),
          array: steps.map(s => s.median_seconds === null ? 0 : hours(s.p90_seconds) - hours(s.median_seconds)),
          color: "#495057", thickness: 1.5, width: 6},
        marker: {color: Friction.colors[i % Friction.colors.length]},
        customdata: steps.map(s => [Friction.duration(s.median_seconds), Friction.duration(s.p90_seconds)]),
        hovertemplate: "%{x}: median %{customdata[0]}, p90 %{customdata[1]}<extra>" + name + "</extra>"};
    }), {barmode: "group", yaxis: {title: {text: "hours from the previous step"}, rangemode: "tozero"},
      legend: {orientation: "h", y: -0.2}});
  },

  table(r, f) {
    const result = document.getElementById("save-result");
    UI.fill(document.querySelector("#friction-steps tbody"), f.steps.map(s => {
      const action = UI.el("td");
      if (s.stuck_rule && s.stuck > 0) action.append(Friction.saveForm(s, result));
      return UI.el("tr", {"data-step": s.step},
        UI.el("td", {}, s.step), UI.el("td", {class: "text"}, s.event),
        UI.el("td", {class: "r users"}, UI.num(s.users)),
        UI.el("td", {class: "r"}, Friction.pct(s.conversion_from_previous)),
        UI.el("td", {class: "r"}, Friction.pct(s.conversion_from_first)),
        UI.el("td", {class: "r"}, UI.num(s.dropped)),
        UI.el("td", {class: "r"}, Friction.duration(s.median_seconds)),
        UI.el("td", {class: "r"}, Friction.duration(s.p90_seconds)),
        UI.el("td", {class: "r stuck"}, s.stuck === null ? "–" : UI.num(s.stuck)), action);
    }));
  },

  saveForm(s, result) {
    const name = UI.el("input", {value: s.stuck_name, size: 28, "aria-label": "Segment name", class: "segment-name"});
    const form = UI.el("form", {class: "inline-form", hidden: true}, name,
      UI.el("button", {type: "submit", class: "primary small-btn"}, "Save"));
    const open = UI.el("button", {type: "button", class: "small-btn save-stuck",
      onclick: () => { form.hidden = !form.hidden; name.focus(); }}, "Save stuck users as a segment");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.className = "";
      try {
        const made = await UI.api("/api/segments", {method: "POST", body: JSON.stringify(
          {name: name.value.trim(), description: s.stuck_description, rule: s.stuck_rule})});
        result.className = "ok";
        result.replaceChildren("Saved ", UI.segLink(made.name),
          ` (the funnel counts ${UI.num(s.stuck)} stuck at step ${s.step}; the segment has no conversion window and refreshes with the others).`);
        form.hidden = true;
      } catch (err) {
        result.className = "error";
        result.textContent = err.message;
      }
    });
    return UI.el("span", {}, open, form);
  },

  instead(f) {
    const box = document.getElementById("instead");
    const stuck = f.steps.filter(s => s.stuck !== null);
    box.replaceChildren(...stuck.map(s => UI.el("div", {class: "seg-block", "data-step": s.step},
      UI.el("h3", {}, `Stuck at step ${s.step} (${s.event}), not ${f.steps[s.step].event}: ${UI.num(s.stuck)} users`),
      s.instead.length ? UI.el("table", {class: "grid"},
        UI.el("thead", {}, UI.el("tr", {}, UI.el("th", {}, "Event"), UI.el("th", {class: "r"}, "Users"),
          UI.el("th", {class: "r"}, "Share of the stuck"), UI.el("th", {class: "r"}, "Events"))),
        UI.el("tbody", {}, ...s.instead.map(i => UI.el("tr", {},
          UI.el("td", {class: "text"}, i.event), UI.el("td", {class: "r"}, UI.num(i.users)),
          UI.el("td", {class: "r"}, Friction.pct(i.share)), UI.el("td", {class: "r"}, UI.num(i.events))))))
        : UI.el("p", {class: "hint"}, s.stuck ? "Nothing else within their window." : "No one is stuck here."))));
  },
};

pages.friction = async () => {
  const form = document.getElementById("friction-controls");
  const error = document.getElementById("friction-error");
  const group = document.getElementById("funnel-group");
  const catalog = await UI.api("/api/catalog");
  const seen = new Set(catalog.events.map(e => e.name));
  document.getElementById("event-names").append(...catalog.events.map(e => UI.el("option", {value: e.name})));
  document.getElementById("segments").append(...catalog.segments.map(s => UI.el("option", {value: s}, s)));
  const milestones = catalog.milestones.filter(m => seen.has(m));  // the journey, when its names are events
  const fallback = milestones.length >= 2 ? milestones.slice(0, 4) : catalog.events.slice(0, 3).map(e => e.name);
  Friction.restore(new URLSearchParams(location.search), fallback.length >= 2 ? fallback : ["", ""]);
  document.getElementById("add-step").addEventListener("click", () => {
    if (document.querySelectorAll("#steps .step").length < 10) document.getElementById("steps").append(Friction.stepInput());
  });
  let answer = null;
  const draw = () => {
    const f = answer.funnels.find(x => Friction.groupName(x) === group.value) || answer.funnels[0];
    Friction.table(answer, f);
    Friction.instead(f);
  };
  const show = async () => {
    error.textContent = "";
    const q = Friction.params();
    history.replaceState(null, "", "?" + q.toString());
    try {
      answer = await UI.api("/api/insights/friction?" + q.toString());
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    const kept = group.value;
    group.replaceChildren(...answer.funnels.map(f => UI.el("option", {value: Friction.groupName(f)}, Friction.groupName(f))));
    if (answer.funnels.some(f => Friction.groupName(f) === kept)) group.value = kept;
    Friction.chart(answer);
    draw();
  };
  group.addEventListener("change", () => { if (answer) draw(); });
  form.addEventListener("submit", event => { event.preventDefault(); show(); });
  if (Friction.steps().length >= 2) await show();
};
