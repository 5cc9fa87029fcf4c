// Acme Analytics, a pretend host product: loads the Segmently browser SDK from the
// Segmently server, identifies the signed-in user and tracks a few events.
//
// Where the server is, and who the user is, come from (first found wins):
//   1. the query string: index.html?host=http://127.0.0.1:8000&writeKey=wk_...&user=u1&hash=...
//   2. data attributes on this script's tag: <script src="app.js" data-host="..." data-write-key="...">
//   3. what an earlier page of this demo was given (kept in localStorage, so the nav
//      links work without carrying the query string along).
// A real product would render these into the page on its server; `hash` is the
// HMAC-SHA256 of the user id with the project's verification secret, made on that server
// (`segmently in-app hash u1` prints one for trying it out).
"use strict";

(function () {
  const SAVED = "acme:segmently";
  const script = document.currentScript;
  const query = new URLSearchParams(location.search);
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(SAVED) || "{}"); } catch (e) { saved = {}; }

  function setting(name, attribute) {
    return query.get(name) || (script && script.dataset[attribute]) || saved[name] || "";
  }

  const config = {
    host: setting("host", "host").replace(/\/+$/, ""),
    writeKey: setting("writeKey", "writeKey"),
    user: setting("user", "user"),
    hash: setting("hash", "hash"),
  };
  // A new user in the query string comes with its own hash (or none): never keep another's.
  if (query.get("user") && !query.get("hash")) config.hash = "";
  localStorage.setItem(SAVED, JSON.stringify(config));

  const status = document.getElementById("sdk-status");
  function say(text) { if (status) status.textContent = text; }

  // The page works without Segmently: every call goes through here and does nothing
  // until the SDK has loaded (or if it never does).
  function sdk(method, ...args) {
    if (window.segmently && window.segmently[method]) window.segmently[method](...args);
  }

  function start() {
    if (!config.host || !config.writeKey) {
      say("Segmently: not configured (add ?host=...&writeKey=... to the URL)");
      return;
    }
    const tag = document.createElement("script");
    tag.src = config.host + "/sdk/segmently.js";
    tag.onload = function () {
      segmently.init({writeKey: config.writeKey, host: config.host});
      if (config.user) {
        segmently.identify(config.user, {name: "Ada Lovelace", plan: "pro"},
          config.hash ? {userHash: config.hash} : {});
      }
      segmently.page();
      say("Segmently: " + config.host + (config.user ? " as " + config.user : " (anonymous)"));
    };
    tag.onerror = function () { say("Segmently: could not load " + tag.src); };
    document.head.appendChild(tag);
  }

  function on(id, handler) {
    const button = document.getElementById(id);
    if (button) button.addEventListener("click", handler);
  }

  function note(text) {
    const log = document.getElementById("activity");
    if (!log) return;
    const item = document.createElement("li");
    item.textContent = new Date().toLocaleTimeString() + " " + text;
    log.prepend(item);
  }

  let reports = 0;
  on("create-report", function () {
    reports += 1;
    const rows = 10 + reports * 2;
    sdk("track", "report_created", {rows: rows, report: "Weekly active users #" + reports});
    note("Report created (" + rows + " rows)");
  });
  on("alerts-button", function () {
    sdk("track", "alert_created", {metric: "signups", threshold: 100});
    note("Alert created on signups");
  });
  on("invite-button", function () {
    const email = document.getElementById("invite-email");
    sdk("track", "teammate_invited", {role: "member", domain: email && email.value.split("@")[1] || null});
    note("Invited " + (email && email.value || "a teammate"));
    if (email) email.value = "";
  });
  on("save-settings", function (event) {
    event.preventDefault();
    sdk("track", "settings_saved", {timezone: document.getElementById("timezone").value});
    note("Settings saved");
  });
  on("sign-out", function () {
    sdk("reset");
    const kept = Object.assign({}, config, {user: "", hash: ""});
    localStorage.setItem(SAVED, JSON.stringify(kept));
    note("Signed out: anonymous from now on");
  });

  start();
})();
