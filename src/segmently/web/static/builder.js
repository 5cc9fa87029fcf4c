// The segment builder: edits a rule tree (the same JSON the API takes) with forms drawn
// from the per-kind field descriptions /api/catalog serves. The server validates, shows
// the YAML and counts the members of the unsaved rule (/api/rules/preview).
"use strict";

const B = {rule: {all: []}, forms: {}, catalog: null, name: document.body.dataset.segment || null};
const el = UI.el;
const GROUPS = ["all", "any", "not"];
const LIST_OPS = ["in", "not_in", "between"];

function groupKey(node) { return GROUPS.find(k => k in node && !("kind" in node)); }

function scalar(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  return t !== "" && !isNaN(Number(t)) ? Number(t) : t;
}

function newCondition(kind) {
  const cond = {kind};
  for (const f of B.forms[kind].fields) {
    if (f.widget === "rule") cond[f.name] = {all: []};
    else if (f.required && f.default !== null) cond[f.name] = f.default;
  }
  return cond;
}

function setOrDelete(obj, key, value) {
  if (value === undefined || value === "" || value === null || (Array.isArray(value) && !value.length)) delete obj[key];
  else obj[key] = value;
  changed();
}

function windowEditor(cond, field) {
  const w = cond[field.name] || {};
  const form = ["last", "between", "within_days_of_first_seen"].find(k => k in w) || "";
  const type = el("select", {"data-field": "window-type"},
    ...[["", "all history"], ["last", "last"], ["between", "between"], ["within_days_of_first_seen", "first days"]]
      .map(([v, label]) => el("option", {value: v, selected: v === form}, label)));
  const parts = [type];
  if (form === "last") {
    parts.push(el("input", {type: "number", min: 1, value: w.last, "data-field": "window-last", style: "width:70px",
      oninput: e => { w.last = Number(e.target.value) || 1; changed(); }}),
      el("select", {"data-field": "window-unit", onchange: e => { w.unit = e.target.value; changed(); }},
        ...["days", "weeks", "months"].map(u => el("option", {value: u, selected: (w.unit || "days") === u}, u))));
  } else if (form === "between") {
    const [a, b] = w.between || ["", ""];
    const set = (i) => e => { w.between = w.between || ["", ""]; w.between[i] = e.target.value; changed(); };
    parts.push(el("input", {type: "date", value: a, oninput: set(0)}), "–", el("input", {type: "date", value: b, oninput: set(1)}));
  } else if (form === "within_days_of_first_seen") {
    parts.push(el("input", {type: "number", min: 1, value: w.within_days_of_first_seen, style: "width:70px",
      oninput: e => { w.within_days_of_first_seen = Number(e.target.value); changed(); }}), "days");
  }
  type.onchange = () => {
    const v = type.value;
    if (!v) delete cond[field.name];
    else cond[field.name] = v === "last" ? {last: 30} : v === "between" ? {between: ["2026-01-01", "2026-02-01"]}
      : {within_days_of_first_seen: 7};
    render(); changed();
  };
  return parts;
}

function filtersEditor(cond, field) {
  const rows = cond[field.name] || [];
  const update = () => setOrDelete(cond, field.name, rows.length ? rows : undefined);
  const row = (f, i) => el("span", {class: "filter"},
    el("input", {list: "dl-prop-" + (cond.event || ""), value: f.property || "", placeholder: "property",
      "data-field": "where-property", style: "width:110px", oninput: e => { f.property = e.target.value; update(); }}),
    el("select", {"data-field": "where-op", onchange: e => { f.op = e.target.value; update(); }},
      ...field.options.map(o => el("option", {value: o, selected: (f.op || "eq") === o}, o))),
    el("input", {value: Array.isArray(f.value) ? f.value.join(", ") : (f.value ?? ""), placeholder: "value",
      "data-field": "where-value", style: "width:110px", oninput: e => {
        const t = e.target.value;
        if (t === "") delete f.value;
        else f.value = LIST_OPS.includes(f.op) ? t.split(",").map(scalar) : scalar(t);
        update(); }}),
    el("button", {type: "button", class: "small-btn", onclick: () => { rows.splice(i, 1); update(); render(); }}, "×"));
  return [...rows.map(row), el("button", {type: "button", class: "small-btn add-filter", onclick: () => {
    rows.push({property: "", op: "eq"}); cond[field.name] = rows; render(); changed(); }}, "+ filter")];
}

function stepsEditor(cond, field) {
  const steps = cond[field.name] = cond[field.name] || [{event: ""}, {event: ""}];
  const unitOf = (st) => field.units.find(u => st["within_" + u] !== undefined) || "";
  const row = (st, i) => {
    const unit = unitOf(st);
    const setLimit = (u, n) => { for (const x of field.units) delete st["within_" + x];
      if (u) st["within_" + u] = n || 1; changed(); };
    return el("div", {class: "step", "data-step": i}, el("span", {class: "hint"}, `${i + 1}.`),
      el("input", {list: "dl-event", value: st.event || "", placeholder: "event", "data-field": "step-event",
        oninput: e => { st.event = e.target.value; loadProperties(e.target.value); changed(); }}),
      ...(i === 0 ? [] : [
        el("select", {"data-field": "step-within", onchange: e => { setLimit(e.target.value, st["within_" + unit]); render(); }},
          el("option", {value: ""}, "any time later"),
          ...field.units.map(u => el("option", {value: u, selected: u === unit}, "within " + u))),
        ...(unit ? [el("input", {type: "number", min: 1, value: st["within_" + unit], style: "width:70px",
          "data-field": "step-within-value", oninput: e => setLimit(unit, Number(e.target.value))})] : [])]),
      ...filtersEditor(st, {name: "where", options: field.options}),
      steps.length > 2 ? el("button", {type: "button", class: "small-btn", onclick: () => {
        steps.splice(i, 1); render(); changed(); }}, "×") : "");
  };
  return [el("div", {class: "steps"}, ...steps.map(row)),
    el("button", {type: "button", class: "small-btn add-step", onclick: () => {
      steps.push({event: ""}); render(); changed(); }}, "+ step")];
}

function percentileEditor(cond, field) {
  const p = cond[field.name] || {};
  const side = field.options.find(k => p[k] !== undefined) || "";
  const set = (k, n) => setOrDelete(cond, field.name, k ? {[k]: n || 10} : undefined);
  return [el("select", {"data-field": "percentile-side", onchange: e => { set(e.target.value, p[side]); render(); }},
      el("option", {value: ""}, "–"), ...field.options.map(k => el("option", {value: k, selected: k === side}, k))),
    ...(side ? [el("input", {type: "number", min: 0, max: 100, step: "any", value: p[side], style: "width:70px",
      "data-field": "percentile-value", oninput: e => set(side, Number(e.target.value))}), "%"] : [])];
}

function fieldEditor(cond, field, path) {
  const v = cond[field.name];
  const attrs = {"data-field": field.name, placeholder: field.required ? "required" : "optional"};
  const listOf = (dl) => el("input", {...attrs, list: dl, value: Array.isArray(v) ? v.join(", ") : "",
    oninput: e => setOrDelete(cond, field.name, e.target.value.split(",").map(s => s.trim()).filter(Boolean))});
  const picker = (dl) => el("input", {...attrs, list: dl, value: v ?? "", oninput: e => setOrDelete(cond, field.name, e.target.value)});
  switch (field.widget) {
    case "event": return el("input", {...attrs, list: "dl-event", value: v ?? "", oninput: e => {
      setOrDelete(cond, field.name, e.target.value); loadProperties(e.target.value); }});
    case "trait": return picker("dl-trait");
    case "feature": return picker("dl-feature");
    case "milestone": return picker("dl-milestone");
    case "segment": return picker("dl-segment");
    case "plan": return picker("dl-plan");
    case "features": return listOf("dl-feature");
    case "plans": return listOf("dl-plan");
    case "event_property": return picker("dl-prop-" + (cond.event || ""));
    case "select": return el("select", {...attrs, onchange: e => setOrDelete(cond, field.name, e.target.value || undefined)},
      ...(field.required && field.default !== null ? [] : [el("option", {value: ""}, "–")]),
      ...field.options.map(o => el("option", {value: o, selected: v === o}, o)));
    case "int": case "number": return el("input", {...attrs, type: "number", value: v ?? "", style: "width:80px",
      step: field.widget === "int" ? 1 : "any", oninput: e => setOrDelete(cond, field.name,
        e.target.value === "" ? undefined : Number(e.target.value))});
    case "value": return el("input", {...attrs, value: Array.isArray(v) ? v.join(", ") : (v ?? ""),
      oninput: e => setOrDelete(cond, field.name, LIST_OPS.includes(cond.op)
        ? e.target.value.split(",").map(scalar).filter(x => x !== "") : scalar(e.target.value))});
    case "window": return windowEditor(cond, field);
    case "filters": return filtersEditor(cond, field);
    case "rule": return nodeEditor(cond.rule, path + ".rule", (r) => { cond.rule = r; });
    case "steps": return stepsEditor(cond, field);
    case "percentile": return percentileEditor(cond, field);
    default: return picker(null);
  }
}

function conditionEditor(cond, path, replace, remove) {
  const form = B.forms[cond.kind];
  const kind = el("select", {class: "kind", onchange: e => { replace(newCondition(e.target.value)); render(); changed(); }},
    ...Object.keys(B.forms).map(k => el("option", {value: k, selected: k === cond.kind}, k.replaceAll("_", " "))));
  return el("div", {class: "cond", "data-path": path}, el("div", {class: "group-head"}, kind,
      el("span", {class: "help"}, form ? form.help : ""),
      el("button", {type: "button", class: "small-btn remove", onclick: remove}, "remove")),
    el("div", {class: "fields"}, ...(form ? form.fields : []).map(f =>
      f.widget === "rule" || f.widget === "steps"
        ? el("div", {style: "width:100%", "data-path": `${path}.${f.name}`}, f.name, fieldEditor(cond, f, path))
        : el("label", {}, f.name.replaceAll("_", " "), fieldEditor(cond, f, path)))));
}

function nodeEditor(node, path, replace, remove) {
  const key = groupKey(node);
  if (!key) return conditionEditor(node, path, replace, remove);
  const children = key === "not" ? (node.not ? [node.not] : []) : node[key];
  const type = el("select", {class: "group-type", onchange: e => {
    const items = children.slice();
    const next = e.target.value === "not" ? {not: items[0] || null} : {[e.target.value]: items};
    replace(next); render(); changed(); }},
    ...[["all", "ALL of"], ["any", "ANY of"], ["not", "NOT"]].map(([v, l]) => el("option", {value: v, selected: v === key}, l)));
  const add = (item) => () => {
    if (key === "not") node.not = item; else node[key].push(item);
    render(); changed(); };
  const canAdd = key !== "not" || !node.not;
  return el("div", {class: "group " + key, "data-path": path},
    el("div", {class: "group-head"}, type,
      canAdd ? el("button", {type: "button", class: "small-btn add-cond", onclick: add(newCondition("performed"))}, "+ condition") : "",
      canAdd ? el("button", {type: "button", class: "small-btn add-group", onclick: add({all: []})}, "+ group") : "",
      remove ? el("button", {type: "button", class: "small-btn remove", onclick: remove}, "remove") : ""),
    ...children.map((child, i) => {
      const childPath = key === "not" ? path + ".not" : `${path}.${key}[${i}]`;
      const set = r => { if (key === "not") node.not = r; else node[key][i] = r; };
      const drop = () => { if (key === "not") delete node.not; else node[key].splice(i, 1); render(); changed(); };
      return nodeEditor(child, childPath, set, drop);
    }));
}

function render() {
  document.getElementById("rule-tree").replaceChildren(nodeEditor(B.rule, "rule", r => { B.rule = r; }, null));
}

const propertiesLoaded = new Set();
async function loadProperties(event) {
  if (!event || propertiesLoaded.has(event) || !B.catalog.events.some(e => e.name === event)) return;
  propertiesLoaded.add(event);
  const {properties} = await UI.api("/api/catalog/properties?event=" + encodeURIComponent(event));
  document.body.append(el("datalist", {id: "dl-prop-" + event}, ...properties.map(p => el("option", {value: p}))));
}

function showErrors(message) {
  document.querySelectorAll(".inline-error").forEach(n => n.remove());
  const box = document.getElementById("rule-error");
  box.hidden = !message; box.textContent = message || "";
  if (!message) return;
  const nodes = [...document.querySelectorAll("[data-path]")];
  for (const line of message.split("\n")) {
    const where = line.split(":")[0];
    const target = nodes.filter(n => where === n.dataset.path || where.startsWith(n.dataset.path + ".")
      || where.startsWith(n.dataset.path + "["))
      .sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (target) target.append(el("div", {class: "error inline-error"}, line));
  }
}

let previewSeq = 0;
const preview = UI.debounce(async () => {
  const seq = ++previewSeq;
  const size = document.getElementById("live-size");
  size.textContent = "counting…";
  const p = await UI.api("/api/rules/preview", {method: "POST", body: JSON.stringify({rule: B.rule})});
  if (seq !== previewSeq) return;  // a newer change is on its way
  document.getElementById("yaml").textContent = p.yaml;
  size.textContent = p.valid ? `${UI.num(p.size)} users` : "invalid rule";
  size.dataset.size = p.valid ? p.size : "";
  showParts(p.valid ? p.parts : {});
  showErrors(p.error);
}, 400);

// Beside each condition and group: how many users it alone holds (counted in the same
// pass as the whole rule).
function showParts(parts) {
  for (const node of document.querySelectorAll("#rule-tree [data-path]")) {
    const head = node.querySelector(":scope > .group-head");
    if (!head) continue;
    let badge = head.querySelector(":scope > .part-size");
    const n = parts[node.dataset.path];
    if (n === undefined) { if (badge) badge.remove(); continue; }
    if (!badge) head.append(badge = el("span", {class: "part-size hint"}));
    badge.textContent = `alone: ${UI.num(n)} users`;
    badge.dataset.size = n;
  }
}

function changed() { document.getElementById("save-result").textContent = ""; preview(); }

async function save() {
  const out = document.getElementById("save-result");
  const name = document.getElementById("seg-name").value.trim();
  const description = document.getElementById("seg-desc").value;
  try {
    const saved = B.name
      ? await UI.api("/api/segments/" + encodeURIComponent(B.name), {method: "PUT", body: JSON.stringify({description, rule: B.rule})})
      : await UI.api("/api/segments", {method: "POST", body: JSON.stringify({name, description, rule: B.rule})});
    out.className = "ok";
    out.replaceChildren(`Saved ${saved.name}, version ${saved.version}. `, UI.segLink(saved.name));
  } catch (err) {
    out.className = "error";
    out.textContent = err.message;
    showErrors(err.body && err.body.code === "invalid_segment" ? err.message : "");
  }
}

async function start() {
  B.catalog = await UI.api("/api/catalog");
  for (const f of B.catalog.forms) B.forms[f.kind] = f;
  const fillList = (id, values) => document.getElementById(id).replaceChildren(...values.map(v => el("option", {value: v})));
  fillList("dl-event", B.catalog.events.map(e => e.name));
  fillList("dl-trait", B.catalog.traits);
  fillList("dl-feature", B.catalog.features);
  fillList("dl-milestone", B.catalog.milestones);
  fillList("dl-segment", B.catalog.segments);
  UI.api("/api/catalog/trait-values?trait=plan").then(p => fillList("dl-plan", p.values.map(v => v.value)));
  if (B.name) {
    const d = await UI.api("/api/segments/" + encodeURIComponent(B.name));
    B.rule = d.rule; document.getElementById("seg-desc").value = d.description;
  }
  render(); preview();
  document.getElementById("save").onclick = save;
  document.getElementById("copy-yaml").onclick = async (e) => {
    const text = document.getElementById("yaml").textContent;
    try { await navigator.clipboard.writeText(text); } catch {  // no clipboard API: select it
      getSelection().selectAllChildren(document.getElementById("yaml")); document.execCommand("copy");
    }
    e.target.textContent = "Copied";
  };
}
start();
