// The Insights index: every analysis of the registry (GET /api/insights), linked to its page.
"use strict";

pages.insights = async () => {
  const {insights} = await UI.api("/api/insights");
  UI.fill(document.querySelector("#insights tbody"), insights.map(a => UI.el("tr", {"data-insight": a.name},
    UI.el("td", {}, a.page ? UI.el("a", {href: "/ui/insights/" + encodeURIComponent(a.name)}, a.name) : a.name),
    UI.el("td", {class: "text"}, a.summary),
    UI.el("td", {class: "text hint"}, Object.keys(a.params.properties || {}).join(", ")))));
};
