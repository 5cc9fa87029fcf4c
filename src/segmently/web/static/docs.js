// Starts Swagger UI on /docs (web/docs.py). A file, not an inline script, so the page
// runs under the same Content-Security-Policy as every other (scripts from self only).
"use strict";

(() => {
  const url = document.currentScript.dataset.openapiUrl;
  window.addEventListener("DOMContentLoaded", () => {
    window.ui = SwaggerUIBundle({
      url,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  });
})();
