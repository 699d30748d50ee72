import { defineConfig } from "vite";

// The gateway serves build/web/ at `/`, so the console lives at /console/ on the API's own origin:
// gRPC-web calls and REST uploads/downloads need no CORS and no configured base URL.
export default defineConfig({
  base: "/console/",
  build: {
    outDir: "../../build/web/console",
    emptyOutDir: true,
    // Envoy answers each file as one direct response; keep the bundle in a few files.
    chunkSizeWarningLimit: 1024,
  },
  // `npm run dev` (live reload at http://localhost:5173/console/) sends the API calls to `make run`'s gateway.
  server: {
    proxy: { "^/(aiorch\\.|api/)": "http://localhost:8080" },
  },
});
