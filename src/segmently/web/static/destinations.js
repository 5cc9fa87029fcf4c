// The Destinations pages (issue 12, docs/act.md): every destination with its state, and
// one destination's deliveries and failures per hour, its failed messages (each with a
// Replay button), its latest attempts and a "Send test" button. Loaded after ui.js, whose
// `pages` and `UI` it extends. What a receiver answered (errors, excerpts) is only ever
// shown as text; plotly is given counts and instants, never text from data.
"use strict";

const Dest = {
  base(name) { return "/api/destinations/" + encodeURIComponent(name); },
  link(name) { return UI.el("a", {href: "/ui/destinations/" + encodeURIComponent(name)}, name); },
  target(d) { return (d.kind === "files" ? d.folder : d.url) || "–"; },
  subscriptions(d) {
    return d.subscriptions.map(s => `${s.segments.join(", ")} (` +
      (s.mode === "sync" ? "sync" : `${s.changes.join(" and ")}, ${s.batch_size} a message`) + ")")
      .join("; ") || "none";
  },
  status(d) {
    return d.enabled ? UI.el("span", {class: "ok"}, "enabled")
      : UI.el("span", {class: "error"}, "disabled: " + (d.disabled_reason || "by its definition"));
  },
  time(iso) { return iso ? iso.replace("T", " ").slice(0, 19) : "–"; },
  // The latest attempt of each message (attempts come newest first): a message whose latest
  // attempt is final and not ok was given up on.
  failed(attempts) {
    const latest = new Map();
    for (const a of attempts) if (!latest.has(a.message_id)) latest.set(a.message_id, a);
    return [...latest.values()].filter(a => a.final && !a.ok);
  },
  // Attempts per hour, delivered and failed (replay requests are not attempts).
  hourly(attempts) {
    const buckets = new Map();
    for (const a of attempts) {
      if (a.attempt === 0) continue;
      const hour = a.at.slice(0, 13) + ":00:00";
      const b = buckets.get(hour) || {delivered: 0, failed: 0};
      b[a.ok ? "delivered" : "failed"] += 1;
      buckets.set(hour, b);
    }
    const hours = [...buckets.keys()].sort();
    return {hours, delivered: hours.map(h => buckets.get(h).delivered),
      failed: hours.map(h => buckets.get(h).failed)};
  },
  result(a) {
    if (a.attempt === 0) return UI.el("span", {class: "hint"}, "replay requested");
    if (a.ok) return UI.el("span", {class: "ok"}, "delivered");
    return UI.el("span", {class: "error"}, a.final ? "failed, given up" : `failed; next try ${Dest.time(a.next_at)}`);
  },
};

pages.destinations = async () => {
  const {destinations} = await UI.api("/api/destinations");
  document.getElementById("no-destinations").hidden = destinations.length > 0;
  UI.fill(document.querySelector("#destinations tbody"), destinations.map(d => {
    const counts = Object.fromEntries(["delivered", "pending", "failed"].map(state =>
      [state, UI.el("td", {class: `r n-${state}`}, "…")]));
    UI.api(Dest.base(d.name) + "?limit=1").then(found => {
      for (const [state, cell] of Object.entries(counts)) cell.textContent = UI.num(found.deliveries.counts[state] || 0);
    }, () => {});
    return UI.el("tr", {"data-destination": d.name}, UI.el("td", {}, Dest.link(d.name)),
      UI.el("td", {class: "kind"}, d.kind), UI.el("td", {class: "wrap target"}, Dest.target(d)),
      UI.el("td", {class: "text subscriptions"}, Dest.subscriptions(d)),
      UI.el("td", {class: "text status"}, Dest.status(d)), ...Object.values(counts));
  }));
};

pages.destination = async () => {
  const name = document.body.dataset.destination, base = Dest.base(name);
  const error = document.getElementById("destination-error");
  const load = async () => {
    const d = await UI.api(base + "?limit=1000");
    const {counts, attempts} = d.deliveries;
    document.getElementById("dest-kind").textContent = d.kind;
    document.getElementById("dest-target").textContent = Dest.target(d);
    document.getElementById("dest-status").replaceChildren(Dest.status(d));
    document.getElementById("dest-subscriptions").textContent = "Subscriptions: " + Dest.subscriptions(d);
    for (const state of ["delivered", "pending", "failed"]) {
      document.getElementById("n-" + state).textContent = UI.num(counts[state] || 0);
    }
    const h = Dest.hourly(attempts);
    if (h.hours.length) {
      // one bar per hour, drawn across its hour (x: its middle, 55 minutes wide)
      const middle = h.hours.map(hour => hour.slice(0, 13) + ":30:00");
      const label = h.hours.map(hour => hour.replace("T", " ").slice(0, 16) + " UTC");
      const bars = (name, y, color) => ({type: "bar", name, x: middle, y, width: 55 * 60 * 1000,
        marker: {color}, customdata: label, hovertemplate: `%{customdata}: %{y} ${name}<extra></extra>`});
      // at least the 24 hours up to the latest attempt, so that one busy hour is one bar
      const hourMs = 3600 * 1000, plain = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
      const first = Date.parse(h.hours[0] + "Z"), last = Date.parse(h.hours[h.hours.length - 1] + "Z");
      const top = Math.max(...h.delivered.map((n, i) => n + h.failed[i]));
      UI.plot("deliveries-chart", [bars("delivered", h.delivered, "#2b8a3e"), bars("failed", h.failed, "#c92a2a")],
        {barmode: "stack", margin: {l: 48, r: 12, t: 28, b: 36},
          xaxis: {type: "date", range: [plain(Math.min(first, last - 23 * hourMs)), plain(last + hourMs)]},
          yaxis: {rangemode: "tozero", dtick: top <= 5 ? 1 : undefined}, legend: {orientation: "h", x: 0, y: 1.12}});
    } else {
      document.getElementById("deliveries-chart").replaceChildren(UI.el("p", {class: "hint"}, "No attempt yet."));
    }
    document.getElementById("chart-note").textContent = attempts.length >= 1000
      ? "From the latest 1,000 attempts." : "";
    const failed = Dest.failed(attempts);
    document.getElementById("no-failed").hidden = failed.length > 0;
    document.getElementById("failed").hidden = !failed.length;
    UI.fill(document.querySelector("#failed tbody"), failed.map(a => UI.el("tr", {"data-message": a.message_id},
      UI.el("td", {}, a.message_id), UI.el("td", {class: "r"}, a.attempt),
      UI.el("td", {}, Dest.time(a.at)), UI.el("td", {class: "text"}, a.error ?? "–"),
      UI.el("td", {}, UI.el("button", {type: "button", class: "small-btn replay",
        "aria-label": `Replay ${a.message_id}`, onclick: (ev) => replay(a.message_id, ev.currentTarget)}, "Replay")))));
    document.getElementById("no-attempts").hidden = attempts.length > 0;
    document.getElementById("attempts").hidden = !attempts.length;
    UI.fill(document.querySelector("#attempts tbody"), attempts.map(a => UI.el("tr", {"data-message": a.message_id},
      UI.el("td", {}, Dest.time(a.at)), UI.el("td", {class: "message"}, a.message_id),
      UI.el("td", {class: "r"}, a.attempt === 0 ? "–" : a.attempt), UI.el("td", {class: "result"}, Dest.result(a)),
      UI.el("td", {class: "r status"}, UI.value(a.status)),
      UI.el("td", {class: "r latency"}, a.latency_ms === null ? "–" : `${UI.value(a.latency_ms)} ms`),
      UI.el("td", {class: "text error-text"}, a.error ?? "–"), UI.el("td", {class: "text excerpt"}, a.excerpt ?? "–"))));
  };
  const replay = async (id, button) => {
    const out = document.getElementById("replay-result");
    button.disabled = true; error.textContent = ""; out.textContent = "";
    try {
      const r = await UI.api("/api/deliveries/replay", {method: "POST", body: JSON.stringify({message_ids: [id]})});
      out.textContent = `Queued ${r.queued} message${r.queued === 1 ? "" : "s"} again: ${id}.`;
      await load();
      setTimeout(() => load().catch(() => {}), 2000);  // its next attempt, when the server made it
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  };
  document.getElementById("send-test").onclick = async (ev) => {
    const button = ev.currentTarget, out = document.getElementById("test-result");
    button.disabled = true; out.className = "hint"; out.textContent = "Sending…";
    try {
      const r = await UI.api(base + "/test", {method: "POST"});
      const answer = r.excerpt ? `; the receiver answered: ${r.excerpt}` : "";
      out.className = r.ok ? "ok" : "error";
      out.textContent = r.ok
        ? `Test delivered${r.status === null ? "" : `: ${r.status}`} in ${UI.value(r.latency_ms)} ms${answer}`
        : `Test failed: ${r.error}${answer}`;
    } catch (err) {
      out.className = "error"; out.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  };
  await load();
};
