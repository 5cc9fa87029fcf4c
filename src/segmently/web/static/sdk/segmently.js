/*! segmently.js: Segmently's browser SDK (tracking and in-app campaigns). The contract
 * with the server is docs/sdk.md. Plain ES2019, no build step, no dependencies: the
 * server serves this file as is at /sdk/segmently.js. */
(function (window, document) {
  "use strict";
  // Loaded twice (two script tags): keep the first copy, its queue and its timers.
  if (window.segmently && window.segmently.VERSION) return;

  var VERSION = "0.1.0";
  var MAX_BATCH = 100; // messages per POST
  var MAX_QUEUE = 1000; // kept while the server is unreachable; the oldest go first
  var KEEPALIVE_MAX = 60000; // bytes: browsers refuse keepalive bodies past 64 KB in flight
  var K_ANON = "segmently:anonymousId";
  var K_USER = "segmently:userId";
  var K_HASH = "segmently:userHash";

  var cfg = null; // the options of init()
  var early = []; // messages made before init(): queued once the write key is known

  // ---------------------------------------------------------------- storage
  // localStorage can be missing or throw (privacy modes, quota, sandboxed frames): then
  // values live in memory for this page, and a value held in memory wins over storage,
  // so a failed write never leaves a stale stored value in charge.
  var memory = {};
  var store = {
    get: function (key) {
      if (key in memory) return memory[key];
      try { return window.localStorage.getItem(key); } catch (e) { return null; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(key, value); delete memory[key]; } catch (e) { memory[key] = value; }
    },
    remove: function (key) {
      delete memory[key];
      try { window.localStorage.removeItem(key); } catch (e) { /* nothing stored */ }
    },
  };

  function warn() {
    try { console.warn.apply(console, ["[segmently]"].concat([].slice.call(arguments))); } catch (e) { /* no console */ }
  }

  // A random UUID. crypto.randomUUID exists only in secure contexts (https, localhost),
  // and a host product may be served over plain http: then a v4 UUID from getRandomValues.
  function uuid() {
    var c = window.crypto;
    if (c && c.randomUUID) {
      try { return c.randomUUID(); } catch (e) { /* insecure context */ }
    }
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var x = Array.from(b, function (n) { return (n + 256).toString(16).slice(1); }).join("");
    return x.slice(0, 8) + "-" + x.slice(8, 12) + "-" + x.slice(12, 16) + "-" + x.slice(16, 20) + "-" + x.slice(20);
  }

  function anonymousId() {
    var id = store.get(K_ANON);
    if (!id) { id = uuid(); store.set(K_ANON, id); }
    return id;
  }

  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function str(v) { return typeof v === "string" ? v : v == null ? "" : String(v); }
  function list(v) { return Array.isArray(v) ? v : []; }

  // ---------------------------------------------------------------- messages
  function pageInfo() {
    return {url: location.href, path: location.pathname, title: document.title,
      referrer: document.referrer, search: location.search};
  }

  // One Segment-format call. Its messageId is made here, once: it travels with the
  // message through every retry, so the server (which ignores a messageId it already
  // stored) keeps each event exactly once however many times it is sent.
  function message(type, fields) {
    var m = {type: type, messageId: uuid(), anonymousId: anonymousId()};
    var user = store.get(K_USER);
    if (user) m.userId = user;
    Object.assign(m, fields);
    m.timestamp = new Date().toISOString();
    m.context = {page: pageInfo(), library: {name: "segmently.js", version: VERSION},
      userAgent: navigator.userAgent, locale: navigator.language};
    // A project that verifies identities refuses an identified user's events without the
    // user's hash (the server checks it, then takes it out before storing).
    var hash = user && store.get(K_HASH);
    if (hash) m.context.userHash = hash;
    return m;
  }

  // ---------------------------------------------------------------- the queue
  // The queue lives in localStorage, not in memory: a message is written there before any
  // attempt to send it, and leaves only once the server answered 2xx, so a reload, a
  // crash or a closed tab loses nothing; the next page (init) sends what is left. Every
  // change re-reads the stored queue, so tabs of the same product share it; two tabs may
  // send the same message, which the server's messageId check makes harmless.
  function queueKey() { return "segmently:queue:" + cfg.writeKey; }

  function readQueue() {
    var q;
    try { q = JSON.parse(store.get(queueKey()) || "[]"); } catch (e) { q = []; }
    return list(q).filter(function (m) { return isObject(m) && typeof m.messageId === "string"; });
  }

  function writeQueue(q) {
    if (q.length) store.set(queueKey(), JSON.stringify(q));
    else store.remove(queueKey());
  }

  function enqueue(messages) {
    var q = readQueue().concat(messages);
    if (q.length > MAX_QUEUE) {
      warn("queue full: dropping the", q.length - MAX_QUEUE, "oldest messages");
      q = q.slice(q.length - MAX_QUEUE);
    }
    writeQueue(q);
  }

  // Removal is by messageId, never by position: other tabs may have added or sent
  // messages while a batch was in flight.
  function removeSent(batch) {
    var ids = {};
    batch.forEach(function (m) { ids[m.messageId] = true; });
    writeQueue(readQueue().filter(function (m) { return !ids[m.messageId]; }));
  }

  var sending = null; // the Promise of the batches in flight (one POST at a time)
  var flushTimer = 0;
  var retryTimer = 0;
  var retryAt = 0; // until then we are backing off: only a forced flush sends
  var failures = 0;

  // One POST: the status, or 0 for a network error (offline, DNS, CORS refused, aborted).
  // text/plain makes it a "simple" cross-origin request: no preflight OPTIONS round trip.
  // keepalive lets the request outlive the page, but browsers cap all keepalive bodies in
  // flight at 64 KB (a previous one may still count, and so do the page's own): when that
  // refuses it, the same body goes again without keepalive.
  function post(batch) {
    var body = JSON.stringify({writeKey: cfg.writeKey, batch: batch, sentAt: new Date().toISOString()});
    var send = function (keepalive) {
      return fetch(cfg.host + "/v1/batch", {method: "POST", body: body, credentials: "omit",
        headers: {"Content-Type": "text/plain"}, keepalive: keepalive})
        .then(function (r) { return r.status; });
    };
    var small = new Blob([body]).size < KEEPALIVE_MAX;
    return (small ? send(true).catch(function () { return send(false); }) : send(false))
      .catch(function () { return 0; });
  }

  // Answered 2xx: sent. 5xx, 408, 429, network: try again later with exponential backoff
  // (1 s doubling to 60 s, each wait plus up to 25% jitter so many browsers coming back
  // after an outage do not all hit the server in the same second). Any other status can
  // never succeed (bad key, bad body, too large): the batch is dropped, loudly.
  function sendBatch(batch) {
    return post(batch).then(function (status) {
      if (status >= 200 && status < 300) {
        removeSent(batch);
        failures = 0;
        retryAt = 0;
        return true;
      }
      if (status === 0 || status >= 500 || status === 408 || status === 429) {
        failures += 1;
        var wait = Math.min(60000, 1000 * Math.pow(2, failures - 1));
        wait += Math.random() * wait * 0.25;
        retryAt = Date.now() + wait;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(function () { drain(true); }, wait);
        return false;
      }
      warn("the server refused a batch of", batch.length, "messages (HTTP " + status + "); dropped");
      removeSent(batch);
      return true;
    });
  }

  // Sends the queue, a batch at a time, until it is empty (true) or a send failed (false).
  // force: send even while backing off (flush(), the page going away, back online).
  function drain(force) {
    if (!cfg) return Promise.resolve(false);
    if (sending) {
      return sending.then(function (ok) { return ok ? drain(force) : false; });
    }
    if (!force && Date.now() < retryAt) return Promise.resolve(false); // the retry timer will send
    clearTimeout(flushTimer);
    flushTimer = 0;
    var run = function () {
      var q = readQueue();
      if (!q.length) return Promise.resolve(true);
      return sendBatch(q.slice(0, MAX_BATCH)).then(function (ok) { return ok ? run() : false; });
    };
    sending = run().then(function (ok) { sending = null; return ok; },
      function (e) { sending = null; warn(e); return false; });
    return sending;
  }

  // Calls are grouped: a batch goes flushMs after the first call that found none waiting.
  function soon() {
    if (!flushTimer && Date.now() >= retryAt) {
      flushTimer = setTimeout(function () { flushTimer = 0; drain(false); }, cfg.flushMs);
    }
  }

  function record(m) {
    if (!cfg) { early.push(m); return; }
    enqueue([m]);
    soon();
  }

  // The SDK's own events (campaign_shown...) are sent at once, not after flushMs: the
  // server's frequency caps must see them before the next page asks for campaigns. A
  // microtask groups the events of one moment (an answered survey) into one POST.
  var kicked = false;
  function report(event, properties) {
    enqueue([message("track", {event: event, properties: properties})]);
    if (!kicked) {
      kicked = true;
      Promise.resolve().then(function () { kicked = false; drain(false); });
    }
  }

  // ---------------------------------------------------------------- campaigns
  var pageGen = 0; // page() starts a new page: answers asked for an older one are stale
  var pending = {}; // campaign id -> the timer of its delay_seconds
  var seen = {}; // campaign ids shown on this page: never twice, however many asks return it
  var current = null; // the campaign on screen (at most one)

  function cancelPending() {
    Object.keys(pending).forEach(function (id) { clearTimeout(pending[id]); });
    pending = {};
  }

  // Asks the server what to show now. Fail closed: any error, any status but 200, or no
  // answer within timeoutMs shows nothing (a slow server must never block the product).
  function ask(event) {
    if (!cfg || !cfg.campaigns) return;
    var gen = pageGen;
    var askedAt = Date.now();
    var user = store.get(K_USER);
    var q = "writeKey=" + encodeURIComponent(cfg.writeKey) +
      "&userId=" + encodeURIComponent(user || anonymousId()) +
      "&url=" + encodeURIComponent(location.href);
    var hash = user && store.get(K_HASH);
    if (hash) q += "&userHash=" + encodeURIComponent(hash);
    if (event) q += "&event=" + encodeURIComponent(event);
    var late = false;
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { late = true; if (ctrl) ctrl.abort(); }, cfg.timeoutMs);
    fetch(cfg.host + "/v1/campaigns?" + q, {credentials: "omit", signal: ctrl ? ctrl.signal : undefined})
      .then(function (r) { return r.status === 200 ? r.json() : null; })
      .then(function (body) {
        clearTimeout(timer);
        if (!late && gen === pageGen && isObject(body)) consider(list(body.campaigns)[0], gen, askedAt);
      })
      .catch(function () { clearTimeout(timer); });
  }

  // The first campaign of an answer only (the server ranked them), after its delay,
  // counted from when the page asked, and only if this is still the same page.
  function consider(c, gen, askedAt) {
    if (!isObject(c) || typeof c.id !== "string" || !KINDS[c.kind]) return;
    if (current || pending[c.id] || seen[c.id]) return;
    var trigger = isObject(c.trigger) ? c.trigger : {};
    var delay = Math.max(0, (Number(trigger.delay_seconds) || 0) * 1000 - (Date.now() - askedAt));
    pending[c.id] = setTimeout(function () {
      delete pending[c.id];
      if (gen === pageGen && !current) show(c);
    }, delay);
  }

  // ---------------------------------------------------------------- rendering
  // Everything is drawn in one shadow root, so the page's CSS cannot restyle campaigns and
  // ours cannot leak into the page. Open, so the page's tests can look inside.
  var host = null;
  var root = null;
  var ids = 0;
  function uid() { ids += 1; return "sg" + ids; }

  var A = "var(--segmently-accent,#4f46e5)";
  var R = "var(--segmently-radius,10px)";
  var CSS = [
    ".c,.back,.ring{position:fixed;z-index:var(--segmently-z,2147483000)}",
    ".c{box-sizing:border-box;font:14px/1.45 var(--segmently-font,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif);" +
      "color:var(--segmently-fg,#1f2937);background:var(--segmently-bg,#fff);border-radius:" + R + ";" +
      "box-shadow:0 12px 32px rgba(0,0,0,.18),0 0 0 1px rgba(0,0,0,.06);padding:18px 20px;text-align:left}",
    ".c *{box-sizing:border-box}",
    "button,input,textarea{font:inherit;color:inherit}",
    ".back{top:0;right:0;bottom:0;left:0;background:rgba(17,24,39,.45)}",
    ".dlg{top:50%;left:50%;transform:translate(-50%,-50%);width:440px;max-width:calc(100vw - 32px);max-height:calc(100vh - 32px);overflow:auto}",
    "h2{margin:0 28px 8px 0;font-size:16px;font-weight:600}",
    "p{margin:0 0 12px;white-space:pre-line}",
    ".btn{padding:7px 14px;border:1px solid rgba(0,0,0,.18);border-radius:calc(" + R + " * .6);background:transparent;cursor:pointer}",
    ".c .pri{background:" + A + ";border-color:transparent;color:#fff}",
    ".x{position:absolute;top:8px;right:8px;border:0;background:none;cursor:pointer;font-size:20px;line-height:1;padding:4px 8px;opacity:.6}",
    ".x:hover{opacity:1}",
    ":focus-visible{outline:2px solid " + A + ";outline-offset:2px}",
    ".acts{display:flex;gap:8px;justify-content:flex-end;flex-wrap:wrap;margin-top:14px}",
    ".row{display:flex;align-items:center;justify-content:space-between;gap:8px}",
    ".row .acts{margin:0}",
    ".muted{opacity:.65;font-size:12px}",
    ".banner{left:0;right:0;border-radius:0;display:flex;align-items:center;justify-content:center;flex-wrap:wrap;gap:12px;padding:10px 48px 10px 16px}",
    ".banner p{margin:0}",
    ".banner .x{top:50%;transform:translateY(-50%)}",
    ".top{top:0}.bottom{bottom:0}",
    ".tip{width:300px;max-width:calc(100vw - 16px);padding:16px}",
    ".ring{pointer-events:none;border:2px solid " + A + ";border-radius:6px;box-shadow:0 0 0 4px rgba(79,70,229,.18)}",
    ".panel{right:16px;bottom:16px;width:300px;max-width:calc(100vw - 32px);padding:14px 16px}",
    ".panel h2{margin-right:56px}",
    ".panel .x{top:6px}.panel .tog{right:38px}",
    "ul{list-style:none;margin:10px 0 0;padding:0}",
    "li{display:flex;gap:10px;align-items:center;padding:5px 0}",
    ".mark{flex:none;display:inline-flex;align-items:center;justify-content:center;width:18px;height:18px;border-radius:50%;border:1.5px solid currentColor;opacity:.45;font-size:11px}",
    ".done .mark{background:" + A + ";border-color:transparent;color:#fff;opacity:1}",
    ".done .lbl{text-decoration:line-through;opacity:.6}",
    ".c a{color:" + A + "}",
    ".scale{display:flex;gap:4px}",
    ".scale button{flex:1;min-width:0;padding:8px 0;border:1px solid rgba(0,0,0,.18);border-radius:6px;background:transparent;cursor:pointer}",
    ".scale [aria-checked=true]{background:" + A + ";border-color:transparent;color:#fff}",
    ".ends{display:flex;justify-content:space-between;margin:4px 0 12px}",
    "textarea{display:block;width:100%;min-height:76px;padding:8px;border:1px solid rgba(0,0,0,.22);border-radius:6px;background:transparent;resize:vertical}",
    "fieldset{border:0;margin:0 0 12px;padding:0;min-width:0}",
    "legend,.q{display:block;font-weight:600;margin:0 0 6px;padding:0}",
    ".field{margin:0 0 12px}",
    ".opt{display:flex;gap:8px;align-items:center;padding:3px 0;cursor:pointer}",
    ".c .err{color:#b91c1c;font-size:13px;margin:8px 0 0}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "[hidden]{display:none!important}",
  ].join("\n");

  function shadow() {
    if (host && host.isConnected) return root;
    host = document.createElement("div");
    host.setAttribute("data-segmently-root", "");
    // Inline, so no page rule (div{transform:...}) can break our fixed positioning.
    // `all` leaves custom properties alone: --segmently-* set on :root still inherit.
    host.style.setProperty("all", "initial");
    root = host.attachShadow({mode: "open"});
    var sheet = null;
    // A constructed sheet passes a host page's CSP that forbids inline <style>.
    if (root.adoptedStyleSheets && window.CSSStyleSheet) {
      try {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } catch (e) { sheet = null; }
    }
    if (!sheet) root.appendChild(el("style", {text: CSS}));
    document.body.appendChild(host);
    return root;
  }

  // Builds an element. Campaign text only ever goes in as textContent (campaign content is
  // treated as untrusted: no innerHTML anywhere in this file); on* keys become listeners.
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v == null || v === false) return;
      if (k === "text") e.textContent = str(v);
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : str(v));
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function button(text, onclick, primary, attrs) {
    return el("button", Object.assign({type: "button", class: primary ? "btn pri" : "btn", text: text, onclick: onclick}, attrs));
  }

  // A link target from campaign content: http(s) or a path on this site, nothing else
  // (no javascript:, data:, ...).
  function safeUrl(u) {
    if (typeof u !== "string") return null;
    u = u.trim();
    if (!/^(https?:|\/)/i.test(u)) return null;
    try {
      var p = new URL(u, location.href).protocol;
      return p === "http:" || p === "https:" ? u : null;
    } catch (e) { return null; }
  }

  function tabbables(box) {
    return [].slice.call(box.querySelectorAll("button,input,textarea,a[href]")).filter(function (x) {
      return !x.disabled && x.tabIndex >= 0 && x.getClientRects().length > 0;
    });
  }

  function focus(x) { if (x && x.focus) x.focus({preventScroll: true}); }

  // Shows one campaign: builds it, puts it on screen, reports campaign_shown.
  function show(c) {
    if (current || !document.body) return;
    var cur = {c: c, nodes: [], off: [], done: false, modal: false, prev: document.activeElement};
    cur.content = isObject(c.content) ? c.content : {};
    cur.close = function (dismissed) { if (current === cur) close(dismissed); };
    var box;
    try { box = KINDS[c.kind](c, cur); } catch (e) { warn("campaign", c.id, "could not be drawn:", e); return; }
    if (!box) return; // e.g. a tour none of whose elements is on this page: nothing, not even campaign_shown
    box.classList.add("c");
    box.setAttribute("data-segmently-campaign", c.id);
    box.setAttribute("data-kind", c.kind);
    cur.nodes.push(box);
    var r = shadow();
    cur.nodes.forEach(function (n) { r.appendChild(n); });
    current = cur;
    seen[c.id] = true;
    cancelPending(); // never two at once: whatever else was waiting is dropped
    report("campaign_shown", {campaign: c.id, campaign_version: c.version, kind: c.kind});
    if (cur.after) cur.after();
  }

  function close(dismissed) {
    var cur = current;
    current = null;
    var hadFocus = !!(root && root.activeElement);
    cur.off.forEach(function (f) { f(); });
    cur.nodes.forEach(function (n) { n.remove(); });
    // An answered survey or NPS is complete; closing its thank-you is not a dismissal.
    if (dismissed && !cur.done) report("campaign_dismissed", {campaign: cur.c.id});
    var prev = cur.prev;
    if ((hadFocus || cur.modal) && prev && prev !== document.body && prev.isConnected) focus(prev);
  }

  function listen(cur, target, type, fn, capture) {
    target.addEventListener(type, fn, capture);
    cur.off.push(function () { target.removeEventListener(type, fn, capture); });
  }

  // The CTA: reported with its (safe) url, then we go there; without one it just closes.
  function clicked(cur, url) {
    url = safeUrl(url);
    report("campaign_clicked", {campaign: cur.c.id, url: url});
    cur.close(false);
    if (url) location.assign(url);
  }

  // A modal dialog (modal, nps, survey): a backdrop, role=dialog + aria-modal, focus moved
  // in and kept in (Tab and Shift-Tab cycle; focus that escapes anyway is brought back),
  // Escape or a click on the backdrop dismisses, and close() returns focus.
  function dialog(cur, labelId, children) {
    cur.modal = true;
    var back = el("div", {class: "back", onclick: function () { cur.close(true); }});
    cur.nodes.push(back);
    var box = el("div", {class: "dlg", role: "dialog", "aria-modal": "true", "aria-labelledby": labelId, tabindex: "-1"}, children);
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation(); // the page's own Escape handlers are not for our dialog
        cur.close(true);
      } else if (e.key === "Tab") {
        var t = tabbables(box);
        if (!t.length) { e.preventDefault(); return; }
        var at = root.activeElement;
        if (e.shiftKey && (at === t[0] || at === box)) { e.preventDefault(); focus(t[t.length - 1]); }
        else if (!e.shiftKey && at === t[t.length - 1]) { e.preventDefault(); focus(t[0]); }
      }
    });
    // Focus inside our shadow root reaches document retargeted to `host`.
    listen(cur, document, "focusin", function (e) { if (e.target !== host) focusInto(box); }, true);
    cur.after = function () { focusInto(box); };
    return box;
  }

  function focusInto(box) {
    focus(box.querySelector("[data-autofocus]:not([hidden])") || tabbables(box)[0] || box);
  }

  function closeX(cur, label) {
    return el("button", {type: "button", class: "x", "aria-label": label || "Close", text: "\u00d7",
      onclick: function () { cur.close(true); }});
  }

  // After an answer: the campaign is complete (no dismissal from here on), a thank-you.
  function thanks(cur, area) {
    cur.done = true;
    area.textContent = "";
    var ok = button("Done", function () { cur.close(false); }, true, {"data-autofocus": true});
    area.appendChild(el("p", {text: str(cur.content.thanks) || "Thank you for your feedback!", role: "status"}));
    area.appendChild(el("div", {class: "acts"}, [ok]));
    focus(ok);
  }

  // ---------------------------------------------------------------- the kinds
  function modal(c, cur) {
    var k = cur.content;
    var b = isObject(k.button) ? k.button : null;
    var tid = uid();
    var title = str(k.title);
    return dialog(cur, tid, [
      title ? el("h2", {id: tid, text: title}) : null,
      el("p", {id: title ? null : tid, text: str(k.body)}),
      el("div", {class: "acts"}, [
        button(str(k.dismiss_label) || "Close", function () { cur.close(true); }),
        b ? button(str(b.label) || "OK", function () { clicked(cur, b.url); }, true, {"data-autofocus": true}) : null,
      ]),
    ]);
  }

  // Not a dialog: a region the user may ignore, so it does not take focus.
  function banner(c, cur) {
    var k = cur.content;
    var b = isObject(k.button) ? k.button : null;
    return el("div", {role: "region", "aria-label": "Announcement", class: "banner " + (k.position === "bottom" ? "bottom" : "top")}, [
      el("p", {text: str(k.body)}),
      b ? button(str(b.label) || "OK", function () { clicked(cur, b.url); }, true) : null,
      closeX(cur, "Dismiss"),
    ]);
  }

  // The element a tour step points at: the first match that is rendered (an element with
  // no box, display:none, has nowhere to anchor). A bad selector matches nothing.
  function anchor(selector) {
    try {
      var e = typeof selector === "string" && selector ? document.querySelector(selector) : null;
      return e && e.getClientRects().length ? e : null;
    } catch (err) { return null; }
  }

  // Tour: non-modal dialogs next to their elements, one step at a time.
  function tour(c, cur) {
    var steps = list(cur.content.steps).filter(function (s) { return isObject(s) && anchor(s.selector); });
    if (!steps.length) return null;
    var i = 0;
    var ring = el("div", {class: "ring", "aria-hidden": "true"});
    cur.nodes.push(ring);
    var tip = el("div", {class: "tip", role: "dialog"});
    tip.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cur.close(true); } });

    function render() {
      var hadFocus = !!(root && root.activeElement);
      var s = steps[i];
      var last = i === steps.length - 1;
      var tid = uid();
      var bid = uid();
      tip.setAttribute("aria-labelledby", tid);
      tip.setAttribute("aria-describedby", bid);
      // Done ends the tour the way closing it does (campaign_dismissed): the contract has
      // no "completed" event, and an until_dismissed tour must not come back once done.
      var next = button(last ? "Done" : "Next", function () { if (last) cur.close(true); else go(1); }, true);
      tip.textContent = "";
      tip.appendChild(closeX(cur, "Close tour"));
      tip.appendChild(el("h2", {id: tid, text: str(s.title)}));
      tip.appendChild(el("p", {id: bid, text: str(s.body)}));
      tip.appendChild(el("div", {class: "row"}, [
        el("span", {class: "muted", text: steps.length > 1 ? (i + 1) + " of " + steps.length : ""}),
        el("div", {class: "acts"}, [i > 0 ? button("Back", function () { go(-1); }) : null, next]),
      ]));
      var target = anchor(s.selector);
      if (target) {
        var r = target.getBoundingClientRect();
        if (r.top < 0 || r.left < 0 || r.bottom > window.innerHeight || r.right > window.innerWidth) {
          target.scrollIntoView({block: "center", inline: "nearest"});
        }
      }
      place();
      // Re-rendering removed the focused button: put focus on the new one. On first show,
      // take focus only if nobody has it (do not steal it from someone typing).
      if (hadFocus || !document.activeElement || document.activeElement === document.body) focus(next);
    }

    function go(d) { i = Math.max(0, Math.min(steps.length - 1, i + d)); render(); }

    // Below the element if it fits, else above, else beside it; always inside the viewport.
    function place() {
      var target = anchor(steps[i].selector);
      var vw = document.documentElement.clientWidth;
      var vh = document.documentElement.clientHeight;
      var w = tip.offsetWidth;
      var h = tip.offsetHeight;
      var gap = 12;
      var m = 8;
      var top;
      var left;
      var side;
      var clamp = true;
      if (!target) { // the element went away meanwhile: centre the step
        ring.hidden = true;
        top = (vh - h) / 2; left = (vw - w) / 2; side = "center";
      } else {
        var r = target.getBoundingClientRect();
        clamp = r.bottom > 0 && r.top < vh; // scrolled out of view: the step goes with it
        ring.hidden = false;
        Object.assign(ring.style, {top: r.top - 4 + "px", left: r.left - 4 + "px", width: r.width + 8 + "px", height: r.height + 8 + "px"});
        left = r.left + r.width / 2 - w / 2;
        if (r.bottom + gap + h <= vh - m) { top = r.bottom + gap; side = "bottom"; }
        else if (r.top - gap - h >= m) { top = r.top - gap - h; side = "top"; }
        else {
          top = r.top + r.height / 2 - h / 2;
          if (r.right + gap + w <= vw - m) { left = r.right + gap; side = "right"; }
          else if (r.left - gap - w >= m) { left = r.left - gap - w; side = "left"; }
          else { top = r.bottom + gap; side = "bottom"; }
        }
      }
      tip.style.left = Math.max(m, Math.min(left, vw - w - m)) + "px";
      tip.style.top = (clamp ? Math.max(m, Math.min(top, vh - h - m)) : top) + "px";
      tip.setAttribute("data-placement", side);
    }

    var frame = 0;
    function later() {
      if (!frame) frame = requestAnimationFrame(function () { frame = 0; if (current === cur) place(); });
    }
    listen(cur, window, "scroll", later, true); // capture: scrolling containers too
    listen(cur, window, "resize", later, false);
    cur.after = render;
    return tip;
  }

  // Checklist: a panel of tasks whose `done` the server computed; collapsible (remembered),
  // dismissable. Each task seen done is reported once per user in this browser as
  // checklist_task_completed, so completions segment like any other event.
  function checklist(c, cur) {
    var k = cur.content;
    var tasks = list(k.tasks).filter(function (t) { return isObject(t) && t.id != null; });
    if (!tasks.length) return null;
    var tid = uid();
    var lid = uid();
    var foldKey = "segmently:collapsed:" + c.id;
    var done = tasks.filter(function (t) { return t.done === true; });
    var items = el("ul", {id: lid}, tasks.map(function (t) {
      var url = safeUrl(t.url);
      var isDone = t.done === true;
      var label = url
        ? el("a", {href: url, class: "lbl", text: str(t.label),
          onclick: function () { report("campaign_clicked", {campaign: c.id, url: url}); }})
        : el("span", {class: "lbl", text: str(t.label)});
      return el("li", {class: isDone ? "done" : null, "data-task": t.id, "data-done": String(isDone)}, [
        el("span", {class: "mark", "aria-hidden": "true", text: isDone ? "\u2713" : ""}),
        el("span", {class: "sr", text: isDone ? "Done: " : "To do: "}),
        label,
      ]);
    }));
    var toggle = el("button", {type: "button", class: "x tog", "aria-controls": lid});
    function fold(folded) {
      items.hidden = folded;
      toggle.textContent = folded ? "+" : "\u2013";
      toggle.setAttribute("aria-expanded", String(!folded));
      toggle.setAttribute("aria-label", folded ? "Expand checklist" : "Collapse checklist");
    }
    toggle.addEventListener("click", function () {
      var folded = !items.hidden;
      fold(folded);
      if (folded) store.set(foldKey, "1"); else store.remove(foldKey);
    });
    fold(store.get(foldKey) === "1");
    cur.after = function () {
      var key = "segmently:tasks:" + cfg.writeKey + ":" + (store.get(K_USER) || anonymousId()) + ":" + c.id;
      var known;
      try { known = list(JSON.parse(store.get(key) || "[]")); } catch (e) { known = []; }
      var fresh = done.map(function (t) { return str(t.id); }).filter(function (id) { return known.indexOf(id) < 0; });
      fresh.forEach(function (id) { report("checklist_task_completed", {campaign: c.id, task: id}); });
      if (fresh.length) store.set(key, JSON.stringify(known.concat(fresh)));
    };
    return el("div", {class: "panel", role: "region", "aria-labelledby": tid}, [
      el("h2", {id: tid, text: str(k.title) || "Get started"}),
      el("div", {class: "muted", text: done.length + " of " + tasks.length + " done"}),
      toggle,
      closeX(cur, "Dismiss checklist"),
      items,
    ]);
  }

  // NPS: 0-10 as a radiogroup of buttons (roving tabindex: Tab reaches the group once,
  // arrows move, Enter/Space picks, as native buttons do), then the follow-up question of
  // the score's category, then a thank-you. The score can still be changed meanwhile.
  function nps(c, cur) {
    var k = cur.content;
    var follow = isObject(k.follow_up) ? k.follow_up : {};
    var tid = uid();
    var area = el("div");
    var slot = el("div");
    var score = null;
    var scores = [];
    var group = el("div", {role: "radiogroup", "aria-labelledby": tid, class: "scale"});
    for (var n = 0; n <= 10; n++) {
      scores.push(el("button", {type: "button", role: "radio", "aria-checked": "false", tabindex: n ? "-1" : "0",
        "data-score": n, text: String(n), onclick: pick.bind(null, n)}));
    }
    scores.forEach(function (b) { group.appendChild(b); });
    scores[0].setAttribute("data-autofocus", "");
    group.addEventListener("keydown", function (e) {
      var at = scores.indexOf(root.activeElement);
      var to = {ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: 10}[e.key];
      if (at < 0 || to === undefined) return;
      e.preventDefault();
      rove((to + 11) % 11);
      focus(scores[(to + 11) % 11]);
    });
    function rove(i) { scores.forEach(function (b, j) { b.tabIndex = j === i ? 0 : -1; }); }

    function pick(s) {
      score = s;
      rove(s);
      scores.forEach(function (b, j) { b.setAttribute("aria-checked", String(j === s)); });
      var category = s <= 6 ? "detractor" : s <= 8 ? "passive" : "promoter";
      var fid = uid();
      var comment = el("textarea", {id: fid, rows: "3"});
      var form = el("form", {"data-category": category}, [
        el("label", {for: fid, class: "q", text: str(follow[category]) || "What is the main reason for your score?"}),
        comment,
        el("div", {class: "acts"}, [el("button", {type: "submit", class: "btn pri", text: "Submit"})]),
      ]);
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        report("nps_submitted", {campaign: c.id, survey: c.id, score: score, comment: comment.value.trim()});
        thanks(cur, area);
      });
      slot.textContent = "";
      slot.appendChild(form);
      focus(comment);
    }

    area.appendChild(group);
    area.appendChild(el("div", {class: "ends muted", "aria-hidden": "true"}, [el("span", {text: "Not likely"}), el("span", {text: "Very likely"})]));
    area.appendChild(slot);
    return dialog(cur, tid, [
      el("h2", {id: tid, text: str(k.question) || "How likely are you to recommend us to a friend or colleague?"}),
      closeX(cur),
      area,
    ]);
  }

  // Survey: choice questions as radio buttons, text ones as a textarea; all on one form, or
  // one at a time (content.one_at_a_time) with Back/Next. Submit reports one
  // survey_answered per answered question, then a thank-you.
  function survey(c, cur) {
    var k = cur.content;
    var qs = list(k.questions).filter(function (q) { return isObject(q) && q.id != null; });
    if (!qs.length) return null;
    var paged = k.one_at_a_time === true;
    var at = 0;
    var title = str(k.title);
    var tid = title ? uid() : null;
    var form = el("form", {novalidate: true});
    var read = [];
    var blocks = qs.map(function (q) {
      var pid = uid();
      tid = tid || pid; // no title: the first question names the dialog
      if (q.kind === "choice") {
        var name = uid();
        var inputs = list(q.options).map(function (o) { return el("input", {type: "radio", name: name, value: str(o)}); });
        read.push(function () {
          var on = inputs.filter(function (x) { return x.checked; })[0];
          return on ? on.value : "";
        });
        return el("fieldset", {"data-question": q.id}, [el("legend", {id: pid, text: str(q.prompt)})].concat(inputs.map(function (x) {
          return el("label", {class: "opt"}, [x, el("span", {text: x.value})]);
        })));
      }
      var fid = uid();
      var text = el("textarea", {id: fid, rows: "3"});
      read.push(function () { return text.value.trim(); });
      return el("div", {class: "field", "data-question": q.id}, [el("label", {id: pid, for: fid, class: "q", text: str(q.prompt)}), text]);
    });
    var area = el("div", {}, [form]);
    var error = el("p", {class: "err", role: "alert", hidden: true});
    var progress = el("span", {class: "muted"});
    var back = button("Back", function () { turn(-1); });
    var next = button("Next", function () { turn(1); }, true);
    var submit = el("button", {type: "submit", class: "btn pri", text: "Submit"});
    blocks.forEach(function (b) { form.appendChild(b); });
    var first = blocks[0].querySelector("input,textarea");
    if (first) first.setAttribute("data-autofocus", ""); // focus the first answer, not the close button
    form.appendChild(error);
    form.appendChild(el("div", {class: "row"}, [progress, el("div", {class: "acts"}, [back, next, submit])]));

    function turn(d) {
      at = Math.max(0, Math.min(qs.length - 1, at + d));
      layout();
      focus(blocks[at].querySelector("input,textarea"));
    }
    function layout() {
      var last = !paged || at === qs.length - 1;
      blocks.forEach(function (b, j) { b.hidden = paged && j !== at; });
      back.hidden = !paged || at === 0;
      next.hidden = last;
      submit.hidden = !last;
      progress.textContent = paged && qs.length > 1 ? (at + 1) + " of " + qs.length : "";
    }
    layout();

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (paged && at < qs.length - 1) { turn(1); return; } // Enter on a radio: next question
      var answers = qs.map(function (q, j) { return {question: str(q.id), answer: read[j]()}; })
        .filter(function (a) { return a.answer !== ""; });
      if (!answers.length) {
        error.textContent = "Please answer at least one question.";
        error.hidden = false;
        return;
      }
      answers.forEach(function (a) {
        report("survey_answered", {campaign: c.id, question: a.question, answer: a.answer});
      });
      thanks(cur, area);
    });
    return dialog(cur, tid, [title ? el("h2", {id: tid, text: title}) : null, closeX(cur), area]);
  }

  var KINDS = {modal: modal, banner: banner, tour: tour, checklist: checklist, nps: nps, survey: survey};

  // ---------------------------------------------------------------- the API
  // No call may throw into the host product: errors are logged, never raised.
  function safe(fn) {
    return function () {
      try { return fn.apply(null, arguments); } catch (e) { warn(e); return undefined; }
    };
  }

  // Without a host: the server this file was loaded from.
  var scriptSrc = document.currentScript && document.currentScript.src;

  var api = {
    VERSION: VERSION,

    init: safe(function (options) {
      var o = isObject(options) ? options : {};
      if (cfg) { warn("init: already started"); return; }
      if (typeof o.writeKey !== "string" || !o.writeKey) { warn("init: a writeKey is required"); return; }
      var origin = scriptSrc ? new URL(scriptSrc).origin : location.origin;
      cfg = {
        writeKey: o.writeKey,
        host: str(o.host || origin).replace(/\/+$/, ""),
        flushMs: o.flushMs >= 0 ? Number(o.flushMs) : 1000,
        timeoutMs: o.timeoutMs > 0 ? Number(o.timeoutMs) : 1500,
        campaigns: o.campaigns !== false,
      };
      if (early.length) { enqueue(early); early = []; }
      // The page may go away at any moment: send what is waiting when it is hidden (the
      // last moment a mobile browser reliably gives us) or unloaded. keepalive lets
      // those requests outlive the page; what does not make it stays queued.
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "hidden") drain(true);
      });
      window.addEventListener("pagehide", function () { drain(true); });
      window.addEventListener("online", function () { drain(true); });
      drain(false); // what an earlier page left
    }),

    identify: safe(function (userId, traits, options) {
      if (isObject(userId)) { options = traits; traits = userId; userId = store.get(K_USER); }
      if (userId == null || userId === "") { warn("identify: a userId is required"); return; }
      var id = str(userId);
      var hash = isObject(options) && options.userHash != null ? str(options.userHash) : null;
      if (store.get(K_USER) !== id) {
        if (!hash) store.remove(K_HASH); // another user's hash is no good
        // Answers asked for whoever this was before (the anonymous visitor) are not theirs.
        pageGen += 1;
        cancelPending();
      }
      if (hash) store.set(K_HASH, hash);
      store.set(K_USER, id);
      record(message("identify", {traits: isObject(traits) ? traits : {}}));
      ask(null);
    }),

    track: safe(function (event, properties) {
      if (typeof event !== "string" || !event) { warn("track: an event name is required"); return; }
      record(message("track", {event: event, properties: isObject(properties) ? properties : {}}));
      ask(event);
    }),

    page: safe(function (name, properties) {
      if (isObject(name)) { properties = name; name = null; }
      var fields = {properties: Object.assign(pageInfo(), isObject(properties) ? properties : {})};
      if (name != null && name !== "") fields.name = str(name);
      // A new page: campaigns waiting for their delay on the old one, or asked for by it,
      // are not shown here. One already on screen stays.
      pageGen += 1;
      cancelPending();
      seen = {};
      record(message("page", fields));
      ask(null);
    }),

    flush: function () {
      try { return drain(true); } catch (e) { warn(e); return Promise.resolve(false); }
    },

    reset: safe(function () {
      store.remove(K_USER);
      store.remove(K_HASH);
      store.set(K_ANON, uuid());
      pageGen += 1; // answers asked for the previous user are not shown to the next one
      cancelPending();
    }),
  };

  window.segmently = api;
})(window, document);
