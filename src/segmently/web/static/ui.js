// Segmently UI pages: each fetches the JSON the /api routes answer and draws it.
// Plain browser JavaScript; charts by plotly.js (served from the installed plotly package).
"use strict";

const UI = {
  async api(path, options = {}) {
    const response = await fetch(path, {credentials: "same-origin", ...options,
      headers: {"content-type": "application/json", ...(options.headers || {})}});
    if (response.status === 401) {
      location.href = "/ui/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("signed out");
    }
    const body = await response.json();
    if (!response.ok) {
      throw Object.assign(new Error(body.message || response.statusText), {body, status: response.status});
    }
    return body;
  },
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  },
  num(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); },
  when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : "never"; },
  value(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toFixed(2)));
    if (typeof v === "object") return JSON.stringify(v);
    return String(v).replace(/T(\d\d:\d\d)(:\d\d)?(\.\d+)?$/, " $1");
  },
  // One path segment for any text: encodeURIComponent leaves "." and "..", which a
  // browser would resolve as directories; a user id may be either.
  seg(v) { const s = encodeURIComponent(v); return s === "." ? "%2E" : s === ".." ? "%2E%2E" : s; },
  userLink(id) { return UI.el("a", {href: "/ui/users/" + UI.seg(id)}, id); },
  segLink(name) { return UI.el("a", {href: "/ui/segments/" + encodeURIComponent(name)}, name); },
  fill(tbody, rows) { tbody.replaceChildren(...rows); },
  // plotly.js draws a subset of HTML found in labels and hover text (<a href>, <b>, <br>),
  // so every text from data reaches it escaped: a trait value "<a href=...>" is shown as
  // those characters, never as a link (plotly turns the entities back into text).
  text(v) { return String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); },
  plot(id, traces, layout = {}) {
    Plotly.react(id, traces, {margin: {l: 48, r: 12, t: 8, b: 36}, font: {size: 12},
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", ...layout},
      {displayModeBar: false, responsive: true});
  },
  spark(values, width = 140, height = 28) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width); svg.setAttribute("height", height); svg.setAttribute("class", "spark");
    if (values.length < 2) return svg;
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) => `${(i / (values.length - 1) * (width - 2) + 1).toFixed(1)},` +
      `${(height - 2 - (v - lo) / span * (height - 4)).toFixed(1)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" ")); line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#3b5bdb"); line.setAttribute("stroke-width", "1.5");
    svg.append(line);
    return svg;
  },
  tree(node) {
    return UI.el("div", {class: "node"},
      UI.el("div", {class: node.truth ? "yes" : "no"}, node.sentence || node.label),
      ...(node.children || []).map(UI.tree));
  },
  debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; },
};

const pages = {
  async overview() {
    const o = await UI.api("/api/overview?days=90");
    const active = o.active_users;
    document.getElementById("n-users").textContent = UI.num(o.users);
    document.getElementById("n-accounts").textContent = UI.num(o.accounts);
    document.getElementById("n-events").textContent = UI.num(o.events);
    const last = active[active.length - 1];
    document.getElementById("overview-as-of").textContent = `As of ${UI.when(o.as_of)} (the latest refresh).`;
    document.getElementById("n-active").textContent = last ? UI.num(last.users) : "0";
    if (last) document.getElementById("n-active-day").textContent = `active on ${last.day}`;
    UI.plot("active-chart", [{x: active.map(d => d.day), y: active.map(d => d.users), type: "scatter",
      mode: "lines", line: {color: "#3b5bdb"}, fill: "tozeroy", fillcolor: "rgba(59,91,219,.08)"}],
      {yaxis: {rangemode: "tozero"}});
    const {segments} = await UI.api("/api/segments");
    const tbody = document.querySelector("#segments tbody");
    UI.fill(tbody, segments.map(s => {
      const spark = UI.el("td");
      UI.api("/api/segments/" + encodeURIComponent(s.name))
        .then(d => spark.append(UI.spark(d.sizes.map(x => x.size))), () => {});
      const failed = s.error ? UI.el("div", {class: "error", title: s.error.message},
        "latest refresh failed: " + s.error.message) : "";
      return UI.el("tr", {"data-segment": s.name}, UI.el("td", {}, UI.segLink(s.name), failed),
        UI.el("td", {class: "r size"}, UI.num(s.size)), spark,
        UI.el("td", {}, s.counting ? "counting…" : UI.when(s.last_computed)), UI.el("td", {}, UI.when(s.data_through)),
        UI.el("td", {class: "r"}, s.version));
    }));
    document.getElementById("refresh").onclick = async (ev) => {
      ev.target.disabled = true; ev.target.textContent = "Refreshing…";
      await UI.api("/api/refresh", {method: "POST"});
      location.reload();
    };
  },

  async segment() {
    const name = document.body.dataset.segment, base = "/api/segments/" + encodeURIComponent(name);
    let d;
    try {
      d = await UI.api(base);
    } catch (err) {  // a deleted (or renamed) segment keeps its history: show it, to revert
      const h = err.status === 404 ? await UI.api(base + "/history").catch(() => null) : null;
      const last = h && h.versions[h.versions.length - 1];
      if (!last || !last.deleted) throw err;
      return pages.deletedSegment(name, base, h.versions);
    }
    pages.showLive(true);
    document.getElementById("description").textContent = d.description;
    while (d.counting) {  // just saved: its members are counted in the background
      document.getElementById("size").textContent = "counting members…";
      await new Promise(done => setTimeout(done, 500));
      d = await UI.api(base);
    }
    pages.segmentActions(name, base);
    pages.history(name, base, d.version).then(pages.managedNote)
      .catch(err => { document.getElementById("segment-error").textContent = err.message; });
    document.getElementById("size").textContent = UI.num(d.size) + " members";
    document.getElementById("freshness").textContent = d.last_computed
      ? `computed ${UI.when(d.last_computed)} (as of ${UI.when(d.as_of)}, as known at ${UI.when(d.known_at)}), data through ${UI.when(d.data_through)}; version ${d.version}`
      : "not computed yet: refresh from the overview";
    document.getElementById("segment-error").textContent = d.error
      ? `The latest refresh (${UI.when(d.error.at)}) could not compute this segment: ${d.error.message}` : "";
    if (d.sizes.length) {
      UI.plot("size-chart", [{x: d.sizes.map(s => s.as_of), y: d.sizes.map(s => s.size), type: "scatter",
        mode: "lines+markers", line: {color: "#3b5bdb"}}], {yaxis: {rangemode: "tozero"}});
    } else {
      document.getElementById("size-chart").replaceChildren(UI.el("p", {class: "hint"}, "No snapshots yet."));
    }
    const by = document.getElementById("breakdown-by");
    const breakdown = async () => {
      if (by.value === "features") {
        const a = await UI.api("/api/insights/adoption?segments=" + encodeURIComponent(name));
        UI.plot("breakdown-chart", a.groups.map(g => ({type: "bar", name: UI.text(g.name), x: a.features.map(UI.text),
          y: a.features.map(f => g.share[f])})), {yaxis: {tickformat: ".0%"}, legend: {orientation: "h"}});
        return;
      }
      const b = await UI.api(`${base}/breakdown?by=${by.value}`);
      const rows = b.values.slice().reverse();
      UI.plot("breakdown-chart", [{type: "bar", orientation: "h", marker: {color: "#3b5bdb"},
        y: rows.map(r => r.value === null || r.value === undefined ? "(none)" : UI.text(r.value)),
        x: rows.map(r => r.users)}], {margin: {l: 110, r: 12, t: 8, b: 30}, yaxis: {type: "category"}});
    };
    by.onchange = breakdown; breakdown();
    pages.memberTable(name, base);
    const t = await UI.api(`${base}/transitions?limit=12`);
    UI.fill(document.querySelector("#transitions tbody"), t.transitions.map(r => UI.el("tr", {},
      UI.el("td", {}, UI.when(r.as_of)), UI.el("td", {}, UI.userLink(r.user_id)), UI.el("td", {class: r.kind}, r.kind))));
  },

  // -- history, revert, rename, delete (issue 11) --------------------------------------
  // Who wrote a version: its `source` as people say it.
  who(source) {
    return {apply: "workspace file (apply)", ui: "UI", api: "API", cli: "CLI", python: "Python API",
      revert: "revert"}[source] || (source ? String(source) : "unknown (before sources were kept)");
  },

  showLive(live) {
    for (const id of ["live", "live-body"]) document.getElementById(id).hidden = !live;
    document.getElementById("gone").hidden = live;
  },

  // Every version, newest first, each a <details> with its diff; a revert button on every
  // version that is neither a deletion nor the live one (`current`: null when deleted).
  async history(name, base, current) {
    const {versions} = await UI.api(base + "/history");
    pages.versions = versions;
    document.getElementById("versions").replaceChildren(...versions.slice().reverse()
      .map(v => pages.versionItem(name, base, v, current)));
    return versions;
  },

  versionItem(name, base, v, current) {
    const live = v.version === current;
    const summary = UI.el("summary", {},
      UI.el("span", {class: "v"}, `Version ${v.version}`), " ",
      UI.el("span", {class: "when"}, UI.when(v.created_at)), " by ",
      UI.el("span", {class: "who"}, pages.who(v.source)),
      v.deleted ? UI.el("span", {class: "tag deleted"}, "deleted") : "",
      live ? UI.el("span", {class: "tag current"}, "current") : "");
    const revert = v.deleted || live ? "" : UI.el("button", {type: "button", class: "small-btn revert",
      "aria-label": `Revert to this version (version ${v.version})`,
      onclick: (ev) => pages.revert(name, base, v.version, ev.currentTarget)}, "Revert to this version");
    return UI.el("li", {class: "version" + (v.deleted ? " deleted" : ""), "data-version": v.version,
      "data-source": v.source ?? ""}, UI.el("details", {}, summary, pages.diff(v.diff)), revert);
  },

  // A unified diff as text, one element per line: + and - lines coloured by class.
  diff(lines) {
    if (!lines || !lines.length) return UI.el("p", {class: "hint"}, "No change to the definition.");
    const kind = (l) => l.startsWith("+++") || l.startsWith("---") ? "diff-file"
      : l.startsWith("@@") ? "diff-hunk" : l.startsWith("+") ? "diff-add"
      : l.startsWith("-") ? "diff-del" : "diff-same";
    return UI.el("pre", {class: "diff"}, lines.map(l => UI.el("span", {class: kind(l)}, l)));
  },

  // A segment a workspace file wrote: UI edits are allowed, and `segmently apply` reports
  // them as drift (never overwriting them without --force).
  managedNote(versions) {
    const note = document.getElementById("managed"), live = versions[versions.length - 1];
    let applied = null;  // the latest version written by apply since the last deletion
    for (const v of versions.slice().reverse()) {
      if (v.deleted) break;
      if (v.source === "apply") { applied = v; break; }
    }
    note.hidden = !applied;
    if (!applied) { note.textContent = ""; return; }
    note.textContent = applied === live
      ? `Managed by a workspace file: version ${live.version} was written by \`segmently apply\`. ` +
        "You can still change, rename or delete it here; the next `segmently apply` reports that " +
        "change as drift and leaves it alone unless run with --force (`segmently export` brings it into the file)."
      : `Managed by a workspace file: version ${applied.version} was written by \`segmently apply\` ` +
        "and the versions since were made elsewhere, so the next `segmently apply` reports them as drift " +
        "and leaves them alone unless run with --force (`segmently export` brings them into the file).";
  },

  async revert(name, base, version, button) {
    if (!confirm(`Revert ${name} to version ${version}? This writes a new version equal to it; ` +
                 "the history keeps every version.")) return;
    const error = document.getElementById("segment-error"), out = document.getElementById("history-result");
    error.textContent = ""; out.textContent = "";
    if (button) button.disabled = true;
    try {
      const made = await UI.api(base + "/revert", {method: "POST", body: JSON.stringify({version})});
      await pages.segment();  // the page's state again: definition, members, history
      out.textContent = `Reverted: version ${made.version} equals version ${version}.`;
    } catch (err) {
      error.textContent = err.message;
      if (button) button.disabled = false;
    }
  },

  segmentActions(name, base) {
    const error = document.getElementById("segment-error");
    const form = document.getElementById("rename-form"), input = document.getElementById("rename-name");
    const toggle = document.getElementById("rename");
    const open = (show) => {
      form.hidden = !show; toggle.setAttribute("aria-expanded", String(show));
      if (show) { input.value = name; input.focus(); input.select(); }
    };
    toggle.onclick = () => open(form.hidden);
    document.getElementById("rename-cancel").onclick = () => { open(false); toggle.focus(); };
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const to = input.value.trim();
      error.textContent = "";
      if (to === name) { error.textContent = "The new name is the segment's name now: give another."; return; }
      try {
        const made = await UI.api(base + "/rename", {method: "POST", body: JSON.stringify({name: to})});
        location.href = "/ui/segments/" + encodeURIComponent(made.name);
      } catch (err) { error.textContent = err.message; }
    };
    document.getElementById("delete").onclick = async () => {
      const last = (pages.versions || [])[(pages.versions || []).length - 1];
      const drift = last && last.source === "apply" ? " A workspace file wrote it: the next `segmently apply` reports the deletion as drift." : "";
      if (!confirm(`Delete the segment ${name}? Its history is kept: its page can revert to an earlier version.${drift}`)) return;
      error.textContent = "";
      try {
        await UI.api(base, {method: "DELETE"});
        location.href = "/ui/";
      } catch (err) { error.textContent = err.message; }
    };
  },

  // A deleted (or renamed) segment's page: its history, each version revertable (which
  // brings the segment back).
  async deletedSegment(name, base, versions) {
    pages.showLive(false);
    const last = versions[versions.length - 1];
    document.getElementById("gone").textContent = `This segment was deleted or renamed (version ${last.version}, ` +
      `${UI.when(last.created_at)}, by ${pages.who(last.source)}). Its history is kept: reverting to a version brings it back.`;
    await pages.history(name, base, null);
  },

  memberTable(name, base) {
    const state = {offset: 0, limit: 25, total: 0};
    const sort = document.getElementById("sort"), desc = document.getElementById("desc");
    const search = document.getElementById("search");
    const load = async () => {
      const q = new URLSearchParams({q: search.value, sort: sort.value || "engagement_score",
        desc: desc.checked, offset: state.offset, limit: state.limit});
      const page = await UI.api(`${base}/table?${q}`);
      state.total = page.total;
      const columns = page.columns;
      if (!sort.options.length) {
        sort.replaceChildren(...columns.map(c => UI.el("option", {value: c, selected: c === page.sort}, c)));
      }
      if (page.source === "live") {
        document.getElementById("size").textContent = UI.num(page.total) + " members (live)";
      }
      document.querySelector("#members thead").replaceChildren(UI.el("tr", {},
        ...columns.map(c => UI.el("th", {}, c.replaceAll("_", " "))), UI.el("th", {}, "")));
      UI.fill(document.querySelector("#members tbody"), page.members.map(m => UI.el("tr", {"data-user": m.user_id},
        ...columns.map(c => UI.el("td", {}, c === "user_id" ? UI.userLink(m[c]) : UI.value(m[c]))),
        UI.el("td", {}, UI.el("button", {class: "small-btn why", type: "button",
          onclick: () => pages.explain(name, m.user_id)}, "why?")))));
      const last = Math.min(state.offset + state.limit, state.total);
      const stale = page.metrics_as_of !== page.as_of ? ` (metrics as of ${UI.when(page.metrics_as_of)}; newer ones are being computed)` : "";
      document.getElementById("page-info").textContent =
        (state.total ? `${UI.num(state.offset + 1)}–${UI.num(last)} of ${UI.num(state.total)}` : "no members") + stale;
      document.getElementById("prev").disabled = state.offset === 0;
      document.getElementById("next").disabled = last >= state.total;
    };
    document.getElementById("prev").onclick = () => { state.offset = Math.max(0, state.offset - state.limit); load(); };
    document.getElementById("next").onclick = () => { state.offset += state.limit; load(); };
    search.oninput = UI.debounce(() => { state.offset = 0; load(); }, 300);
    sort.onchange = desc.onchange = () => { state.offset = 0; load(); };
    load();
  },

  async explain(name, user) {
    const e = await UI.api(`/api/segments/${encodeURIComponent(name)}/explain/${UI.seg(user)}`);
    const box = document.getElementById("why");
    box.hidden = false;
    document.getElementById("why-title").textContent = `Why ${user} is ${e.member ? "in" : "not in"} ${name}`;
    document.getElementById("why-tree").replaceChildren(UI.tree(e.explanation));
    document.getElementById("why-close").onclick = () => { box.hidden = true; };
    box.scrollIntoView({block: "nearest"});
  },

  async user() {
    const id = document.body.dataset.user, base = "/api/users/" + UI.seg(id);
    const [p, t, why] = await Promise.all([UI.api(base + "/at-refresh"), UI.api(base + "/traits"),
      UI.api(base + "/explanations")]);
    const kv = (obj) => Object.entries(obj).map(([k, v]) => UI.el("tr", {}, UI.el("td", {}, k), UI.el("td", {}, UI.value(v))));
    UI.fill(document.querySelector("#traits tbody"), kv(t.traits));
    UI.fill(document.querySelector("#metrics tbody"), kv(p.metrics));
    const m = p.metrics;
    document.getElementById("user-as-of").textContent = `Scores, metrics and segments as of ${UI.when(p.as_of)} (the latest refresh).`;
    document.getElementById("scores").replaceChildren(...[["engagement", m.engagement_score],
      ["health", m.health_score], ["band", m.health_band], ["lifecycle", m.lifecycle],
      ["journey", m.journey_stage], ["plan", m.plan]].map(([k, v]) =>
        UI.el("div", {class: "tile"}, UI.el("span", {class: "num"}, UI.value(v)), UI.el("span", {}, k))));
    UI.fill(document.querySelector("#features tbody"), (p.features || []).map(f => UI.el("tr", {},
      UI.el("td", {}, f.feature), UI.el("td", {class: "r"}, UI.num(f.uses_window)),
      UI.el("td", {}, UI.when(f.first_used)), UI.el("td", {}, UI.when(f.last_used)))));
    const box = document.getElementById("user-segments");
    box.replaceChildren(why.segments.length ? "" : UI.el("p", {class: "hint"}, "In no segment at the last refresh."));
    box.append(...why.segments.map(e => UI.el("div", {class: "seg-block tree"},
      UI.el("h2", {}, UI.segLink(e.segment)), UI.tree(e.explanation))));
    let before = null;
    const older = document.getElementById("older"), tbody = document.querySelector("#timeline tbody");
    const more = async () => {
      const q = new URLSearchParams({limit: 30, ...(before || {})});
      const {events} = await UI.api(`${base}/timeline?${q}`);
      tbody.append(...events.map(e => UI.el("tr", {}, UI.el("td", {}, UI.when(e.timestamp)),
        UI.el("td", {}, e.event), UI.el("td", {class: "hint wrap"}, JSON.stringify(e.properties)))));
      const last = events[events.length - 1];
      before = last ? {before: last.timestamp, before_id: last.message_id} : before;
      older.hidden = events.length < 30;
    };
    older.onclick = more; more();
  },

  async journey() {
    const select = document.getElementById("funnel-segment");
    const {segments} = await UI.api("/api/segments");
    select.append(...segments.map(s => UI.el("option", {value: s.name}, s.name)));
    const funnel = async () => {
      const f = await UI.api("/api/insights/funnel?segment=" + encodeURIComponent(select.value));
      UI.plot("funnel-chart", [{type: "funnel", y: f.steps.map(s => UI.text(s.milestone)), x: f.steps.map(s => s.users),
        textinfo: "value+percent initial", marker: {color: "#3b5bdb"}}], {margin: {l: 160, r: 12, t: 8, b: 8}});
      UI.fill(document.querySelector("#funnel tbody"), f.steps.map(s => UI.el("tr", {},
        UI.el("td", {}, s.step), UI.el("td", {}, s.milestone), UI.el("td", {class: "r"}, UI.num(s.users)),
        UI.el("td", {class: "r"}, (100 * s.share_of_first).toFixed(1) + "%"),
        UI.el("td", {class: "r"}, UI.num(s.dropped)), UI.el("td", {class: "r"}, UI.num(s.stuck)))));
    };
    select.onchange = funnel; funnel();
    const a = await UI.api("/api/insights/adoption");
    UI.plot("adoption-chart", [{type: "heatmap", x: a.features.map(UI.text),
      y: a.groups.map(g => UI.text(`${g.name} (${UI.num(g.size)})`)),
      z: a.groups.map(g => a.features.map(f => g.share[f])), zmin: 0, zmax: 1,
      colorscale: [[0, "#f4f6fb"], [1, "#3b5bdb"]],
      text: a.groups.map(g => a.features.map(f => (100 * g.share[f]).toFixed(0) + "%")), texttemplate: "%{text}",
      hovertemplate: "%{y}<br>%{x}: %{text}<extra></extra>", colorbar: {tickformat: ".0%"}}],
      {margin: {l: 200, r: 12, t: 8, b: 90}, yaxis: {autorange: "reversed"}});
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const page = pages[document.body.dataset.page];
  if (page) page().catch(err => document.querySelector("main h1").after(UI.el("p", {class: "error"}, err.message)));
});
