// Starts Swagger UI on /docs against the app's own OpenAPI document (no inline script).
window.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("openapi");
  window.SwaggerUIBundle({
    url: target.dataset.specUrl,
    domNode: target,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
  });
});
