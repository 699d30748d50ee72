// Renders the gateway's own OpenAPI document. "Authorize" takes the `access` token of POST /api/token/;
// it is kept in the browser's local storage so a reload does not ask again.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  // No badge from the public validator service: the document is checked at build time.
  validatorUrl: null,
});
