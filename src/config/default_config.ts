/**
 * The config Tollgate runs when started without `--config`: sample routes matching the
 * example Envoy config (docs/examples/envoy.yaml), so `deno task dev` plus that Envoy is
 * a working gateway. Embedded as text so the compiled binary needs no file for it.
 */
export const DEFAULT_CONFIG_SOURCE = "<embedded default config>";

export const DEFAULT_CONFIG_YAML = `# Tollgate's embedded default config (see docs/configuration.md).
listen:
  socket: /tmp/tollgate/extproc.sock
admin:
  address: 127.0.0.1:9002
log:
  format: text
routes:
  # GET /users/... : a header for the upstream, a header for the client, one removed.
  - name: users-v1
    policies:
      - name: set-headers
        version: v1
        parameters:
          requestHeaders: [{ name: x-team, value: users }]
          responseHeaders: [{ name: x-served-by, value: tollgate }]
      - name: remove-headers
        version: v1
        parameters:
          responseHeaders: [{ name: x-powered-by }]
  # POST /orders/... with a JSON body: two Python policies (one round trip), then TypeScript.
  - name: orders
    policies:
      - name: json-body-rewrite
        version: v1
        parameters:
          remove: [internalNote]
          set: { source: gateway }
      - name: add-python-header
        version: v1
      - name: set-headers
        version: v1
        parameters:
          responseHeaders: [{ name: x-served-by, value: tollgate }]
  # GET /legacy/... : answered by Tollgate; the upstream is never called.
  - name: legacy
    policies:
      - name: respond
        version: v1
        parameters:
          statusCode: 410
          headers: [{ name: content-type, value: application/json }]
          body: '{"error":"gone","use":"/users"}'
`;
