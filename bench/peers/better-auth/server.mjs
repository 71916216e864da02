// better-auth on plain node:http: the peer that bench/run measures next to
// profiteer, on the same PostgreSQL. Started by start.sh; bench-only.
//
// Env: DATABASE_URL (required), PORT (default 18090), COOKIE_FILE (required),
//      BENCH_PASSWORD (default "bench-Passw0rd-correct-horse").
import http from "node:http";
import { writeFileSync } from "node:fs";
import pg from "pg";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { randomBytes } from "node:crypto";

const PORT = Number(process.env.PORT || 18090);
const DATABASE_URL = process.env.DATABASE_URL;
const COOKIE_FILE = process.env.COOKIE_FILE;
const EMAIL = "bench@example.com";
const PASSWORD = process.env.BENCH_PASSWORD || "bench-Passw0rd-correct-horse";
if (!DATABASE_URL) throw new Error("DATABASE_URL is not set");
if (!COOKIE_FILE) throw new Error("COOKIE_FILE is not set");

const baseURL = `http://127.0.0.1:${PORT}`;
const options = {
  database: new pg.Pool({ connectionString: DATABASE_URL, max: 20 }),
  emailAndPassword: { enabled: true },
  // A fresh random secret each start: nothing secret is kept in the repository.
  secret: randomBytes(32).toString("hex"),
  baseURL,
  trustedOrigins: [baseURL],
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
};
const auth = betterAuth(options);

// better-auth's own schema (user, session, account, verification).
const { runMigrations } = await getMigrations(options);
await runMigrations();

// The one bench user, created if absent.
try {
  await auth.api.signUpEmail({ body: { email: EMAIL, password: PASSWORD, name: "bench" } });
} catch (e) {
  if (e?.body?.code !== "USER_ALREADY_EXISTS" && e?.body?.code !== "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL") throw e;
}

// One sign-in for the session cookie that peer_get_session.lua sends.
const res = await auth.api.signInEmail({
  body: { email: EMAIL, password: PASSWORD },
  asResponse: true,
});
if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
const cookie = res.headers
  .getSetCookie()
  .map((c) => c.split(";")[0])
  .join("; ");
if (!cookie) throw new Error("sign-in set no cookie");
writeFileSync(COOKIE_FILE, cookie + "\n");

const server = http.createServer(toNodeHandler(auth));
server.listen(PORT, "127.0.0.1", () => {
  console.log(`peer listening on ${PORT}`);
});
