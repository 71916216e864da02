// Checks rpc.discover against a running server, with the OpenRPC project's
// own tools and a JSON-schema faker (run by tests/api/openrpc.rs):
//   1. @open-rpc/schema-utils-js parseOpenRPCDocument: valid against the
//      OpenRPC meta-schema, every $ref resolvable.
//   2. Every example pairing valid against its method's own schemas (ajv).
//   3. Calls generated from each method's params schema (json-schema-faker,
//      kept only if ajv agrees they are valid) are never answered -32602,
//      and every result that comes back is valid against the result schema.
//   4. A scripted session (register, login, introspect, ...) whose results
//      must match their schemas exactly (additionalProperties: false).
// usage: node check.js HOST:PORT [calls-per-method]
"use strict";

const { parseOpenRPCDocument } = require("@open-rpc/schema-utils-js");
const jsf = require("json-schema-faker");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const addr = process.argv[2];
const perMethod = Number(process.argv[3] || 12);
const failures = [];
const fail = (what) => {
  failures.push(what);
  console.log("FAIL " + what);
};

let nextId = 1;
async function call(method, params) {
  const res = await fetch(`http://${addr}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", method, params, id: nextId++ }),
  });
  return res.json();
}

// Passwords of symbols only: strong for zxcvbn, and never containing a
// username (whose alphabet is letters, digits and _ . -).
const SYMBOLS = "!#$%&*+=?@^~()[]{}<>";
function strongPassword() {
  const len = 16 + Math.floor(Math.random() * 25);
  let out = "";
  for (let i = 0; i < len; i++) out += SYMBOLS[Math.floor(Math.random() * SYMBOLS.length)];
  return out;
}

async function main() {
  const raw = (await call("rpc.discover", {})).result;
  if (!raw) throw new Error("rpc.discover gave no result");

  // 1. The OpenRPC tools read it.
  let doc;
  try {
    doc = await parseOpenRPCDocument(JSON.parse(JSON.stringify(raw)));
    console.log(`parseOpenRPCDocument: ok, ${doc.methods.length} methods`);
  } catch (e) {
    fail(`parseOpenRPCDocument: ${e.message}`);
    return;
  }

  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("password", true); // a policy, stated in the description
  const rooted = (schema) => ({ allOf: [schema], components: raw.components });
  const compile = (schema) => ajv.compile(rooted(schema));

  const methods = {};
  for (const m of raw.methods) {
    methods[m.name] = {
      def: m,
      params: compile(m["x-params-schema"]),
      result: compile(m.result.schema),
    };
    // The params list and x-params-schema must say the same.
    const props = Object.keys(m["x-params-schema"].properties).sort();
    const listed = m.params.map((p) => p.name).sort();
    if (JSON.stringify(props) !== JSON.stringify(listed)) fail(`${m.name}: params list and x-params-schema differ`);
    if (!m.errors || m.errors.length === 0) fail(`${m.name}: no errors listed`);
  }

  // 2. Examples agree with their own method's schemas.
  for (const m of raw.methods) {
    if (!m.examples || m.examples.length === 0) {
      fail(`${m.name}: no example`);
      continue;
    }
    for (const ex of m.examples) {
      const params = Object.fromEntries(ex.params.map((p) => [p.name, p.value]));
      if (!methods[m.name].params(params)) fail(`${m.name} example params: ${ajv.errorsText(methods[m.name].params.errors)}`);
      if (ex.result && !methods[m.name].result(ex.result.value)) fail(`${m.name} example result: ${ajv.errorsText(methods[m.name].result.errors)}`);
    }
  }
  console.log("examples: checked");

  // 3. Generated calls.
  jsf.option({
    alwaysFakeOptionals: false,
    optionalsProbability: 0.6,
    maxItems: 4,
    maxLength: 80,
    useDefaultValue: false,
    failOnInvalidFormat: false,
  });
  jsf.format("password", strongPassword);
  let calls = 0;
  let skipped = 0;
  const answered = {};
  for (const m of raw.methods) {
    const { params: valid, result: validResult } = methods[m.name];
    for (let i = 0; i < perMethod; i++) {
      let params;
      for (let tries = 0; tries < 40; tries++) {
        const candidate = jsf.generate(rooted(m["x-params-schema"]));
        delete candidate.components;
        if (valid(candidate)) {
          params = candidate;
          break;
        }
      }
      if (params === undefined) {
        skipped++;
        continue;
      }
      const answer = await call(m.name, params);
      calls++;
      const code = answer.error ? answer.error.code : "ok";
      answered[code] = (answered[code] || 0) + 1;
      if (answer.error && answer.error.code === -32602) {
        fail(`${m.name} ${JSON.stringify(params)} -> -32602 ${JSON.stringify(answer.error.data)}`);
      } else if (!answer.error && !validResult(answer.result)) {
        fail(`${m.name} result ${JSON.stringify(answer.result).slice(0, 300)}: ${ajv.errorsText(validResult.errors)}`);
      }
      if (m.name === "user.import" && answer.result) {
        for (const e of answer.result.errors) {
          if (e.code === -32602) fail(`user.import row ${JSON.stringify(params.users[e.index])} -> -32602 ${e.field} ${e.reason}`);
        }
      }
    }
  }
  console.log(`generated calls: ${calls} made, ${skipped} not generated valid, answers ${JSON.stringify(answered)}`);
  if (calls < raw.methods.length * perMethod * 0.8) fail(`too few generated calls: ${calls}`);

  // 4. A scripted session: real results, checked against their schemas.
  const checked = async (method, params) => {
    const answer = await call(method, params);
    if (answer.error) {
      fail(`session ${method}: ${JSON.stringify(answer.error)}`);
      return undefined;
    }
    if (methods[method] && !methods[method].result(answer.result)) {
      fail(`session ${method} result ${JSON.stringify(answer.result)}: ${ajv.errorsText(methods[method].result.errors)}`);
    }
    return answer.result;
  };
  const username = "openrpc_" + Math.random().toString(36).slice(2, 10);
  const password = strongPassword();
  const email = `${username}@example.com`;
  const reg = await checked("auth.register", { username, password, email, profile: { nickname: "N", extra: { a: 1 } } });
  if (!reg) return;
  const tokens = await checked("auth.login", { username: email, password, ip: "192.0.2.1", user_agent: "check.js" });
  await checked("auth.introspect", { token: tokens.access_token });
  await checked("auth.introspect", { token: "pat_nope" });
  await checked("auth.authorize", { token: tokens.access_token, permission: "post:edit" });
  await checked("auth.sessions", { token: tokens.access_token });
  await checked("auth.mfa.setup_totp", { token: tokens.access_token });
  await checked("user.get", { user_id: reg.user_id });
  await checked("user.gets", { user_ids: [reg.user_id, 999999999] });
  await checked("user.find", { email });
  await checked("user.search", { query: username, limit: 1 });
  await checked("user.update_profile", { user_id: reg.user_id, profile: { bio: "b", nickname: null } });
  await checked("user.login_history", { user_id: reg.user_id });
  const proof = await checked("auth.request_email_verification", { token: tokens.access_token });
  if (proof) await checked("auth.verify_email", { verify_token: proof.verify_token });
  await checked("auth.change_email", { token: tokens.access_token, password, new_email: `new.${email}` });
  await checked("user.export", { user_id: reg.user_id });
  await checked("auth.export_account", { token: tokens.access_token });
  const reset = await checked("auth.request_password_reset", { username });
  await checked("auth.refresh", { refresh_token: tokens.refresh_token });
  if (reset) await checked("auth.reset_password", { reset_token: reset.reset_token, new_password: strongPassword() });
  await checked("user.delete", { user_id: reg.user_id });
  await checked("ping", {});
  console.log("session: checked");
}

main()
  .catch((e) => fail(`crashed: ${e.stack || e}`))
  .finally(() => {
    console.log(failures.length === 0 ? "openrpc: all checks passed" : `openrpc: ${failures.length} failures`);
    process.exit(failures.length === 0 ? 0 : 1);
  });
