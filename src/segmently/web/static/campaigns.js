// The In-app pages (docs/sdk.md): every campaign with its audience, status, arms and reach,
// the in-app settings (cooldown, identity verification) and the snippet that loads the
// SDK; and one campaign's definition, numbers and versions, with an enable/disable switch.
// Loaded after ui.js, whose `pages` and `UI` it extends. Campaign text is only ever shown
// as text (textContent), never as HTML.
"use strict";

const Camp = {
  base(name) { return "/api/campaigns/" + encodeURIComponent(name); },
  link(name) { return UI.el("a", {href: "/ui/campaigns/" + encodeURIComponent(name)}, name); },
  audience(c) {
    const parts = [...c.audience.in, ...c.audience.not_in.map(s => "not " + s)];
    return parts.join(", ") || "everyone";
  },
  status(c) {
    if (!c.enabled) return UI.el("span", {class: "error"}, "disabled");
    return c.live ? UI.el("span", {class: "ok"}, "live") : UI.el("span", {class: "hint"}, "outside its schedule");
  },
  frequency(f) { return typeof f === "string" ? f.replace("_", " ") : `every ${f.every_days} days`; },
  trigger(t) {
    const parts = [];
    if (t.url) parts.push(`on pages ${t.url}`);
    if (t.event) parts.push(`after ${t.event}`);
    if (t.delay_seconds) parts.push(`${t.delay_seconds} s after the page asks`);
    return parts.join(", ") || "on any page";
  },
  schedule(s) {
    if (!s.start && !s.end) return "always";
    return `${s.start ? "from " + UI.when(s.start) : ""} ${s.end ? "until " + UI.when(s.end) : ""}`.trim();
  },
};

pages.campaigns = async () => {
  const {campaigns} = await UI.api("/api/campaigns");
  document.getElementById("no-campaigns").hidden = campaigns.length > 0;
  UI.fill(document.querySelector("#campaigns tbody"), campaigns.map(c =>
    UI.el("tr", {"data-campaign": c.name}, UI.el("td", {}, Camp.link(c.name)),
      UI.el("td", {class: "kind"}, c.kind), UI.el("td", {class: "text"}, Camp.audience(c)),
      UI.el("td", {class: "text status"}, Camp.status(c)),
      UI.el("td", {class: "r"}, c.holdout_percent + "%"),
      UI.el("td", {class: "r n-assigned"}, UI.num(c.assigned)),
      UI.el("td", {class: "r n-held"}, UI.num(c.held_out)),
      UI.el("td", {class: "r n-shown"}, UI.num(c.shown_users)))));
  const form = document.getElementById("in-app-settings");
  const cooldown = document.getElementById("cooldown"), verification = document.getElementById("verification");
  const result = document.getElementById("settings-result");
  const settings = await UI.api("/api/in-app/settings");
  cooldown.value = settings.cooldown_hours;
  verification.checked = settings.identity_verification;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.className = "";
    try {
      const saved = await UI.api("/api/in-app/settings", {method: "PUT", body: JSON.stringify(
        {cooldown_hours: Number(cooldown.value), identity_verification: verification.checked})});
      result.className = "ok";
      result.textContent = "Saved.";
      const fresh = saved.identity_verification && !settings.identity_verification;
      document.getElementById("secret-note").hidden = !fresh;
      if (fresh) document.getElementById("secret").textContent = saved.verification_secret;
      settings.identity_verification = saved.identity_verification;
    } catch (err) {
      result.className = "error";
      result.textContent = err.message;
    }
  });
  const {write_key: key} = await UI.api("/api/project").catch(() => ({write_key: "YOUR_WRITE_KEY"}));
  document.getElementById("snippet").textContent =
    `<script src="${location.origin}/sdk/segmently.js"></script>\n<script>\n` +
    `  segmently.init({writeKey: "${key}", host: "${location.origin}"});\n` +
    `  segmently.identify(currentUser.id, {plan: currentUser.plan}` +
    (settings.identity_verification ? `, {userHash: currentUser.segmentlyHash}` : "") + `);\n` +
    `  segmently.page();\n</script>`;
};

pages.campaign = async () => {
  const name = document.body.dataset.campaign, base = Camp.base(name);
  const error = document.getElementById("campaign-error");
  const toggle = document.getElementById("toggle");
  let current = null;
  const load = async () => {
    const [c, list] = await Promise.all([UI.api(base), UI.api("/api/campaigns")]);
    const summary = list.campaigns.find(x => x.name === name) || {};
    current = c;
    document.getElementById("camp-kind").textContent = c.kind;
    document.getElementById("camp-status").replaceChildren(Camp.status({...c, live: summary.live}));
    document.getElementById("camp-version").textContent = `version ${c.version}`;
    document.getElementById("camp-description").textContent = c.description || "";
    toggle.textContent = c.enabled ? "Disable" : "Enable";
    document.getElementById("n-assigned").textContent = UI.num(summary.assigned);
    document.getElementById("n-held").textContent = UI.num(summary.held_out);
    document.getElementById("n-shown").textContent = UI.num(summary.shown_users);
    const facts = [
      ["Audience", Camp.audience(c)], ["Trigger", Camp.trigger(c.trigger)],
      ["Schedule", Camp.schedule(c.schedule)], ["Frequency", Camp.frequency(c.frequency)],
      ["Priority", String(c.priority)], ["Holdout", `${c.holdout_percent}% kept out (a stable hash of campaign and user)`],
      ["Goal", c.goal ? `${JSON.stringify(c.goal.rule)} within ${c.goal.within_days} days` : "none"],
    ];
    document.getElementById("facts").replaceChildren(...facts.flatMap(([k, v]) =>
      [UI.el("dt", {}, k), UI.el("dd", {}, v)]));
    document.getElementById("content").textContent = JSON.stringify(c.content, null, 2);
    UI.fill(document.querySelector("#versions tbody"), c.versions.slice().reverse().map(v =>
      UI.el("tr", {}, UI.el("td", {class: "r"}, String(v.version)), UI.el("td", {}, UI.when(v.created_at)),
        UI.el("td", {}, v.source || "–"), UI.el("td", {}, v.deleted ? "deleted" : "saved"))));
  };
  toggle.addEventListener("click", async () => {
    error.textContent = "";
    try {
      const {version, versions, ...definition} = current;
      await UI.api(base, {method: "PUT", body: JSON.stringify({...definition, enabled: !current.enabled})});
      await load();
    } catch (err) { error.textContent = err.message; }
  });
  try { await load(); } catch (err) { error.textContent = err.message; }
};
