// An independent OpenID Provider for the interop journeys: panva's `oidc-provider` (v9, OpenID
// Certified), configured for what the app needs and nothing it does not: the authorization code
// flow with PKCE (S256, required of every client), rotating refresh tokens, JWT access tokens
// for the `demo-api` resource (RFC 9068 through Resource Indicators, RFC 8707), revocation
// (RFC 7009), RP-Initiated Logout 1.0 and Back-Channel Logout 1.0. (Session Management 1.0 and
// its check_session_iframe are not in oidc-provider since v7: the app runs without them here.)
//
// Run: `node end2end/interop/provider.mjs` (INTEROP_ADDR, default 127.0.0.1:4500; INTEROP_ISSUER,
// default http://localhost:<port>; INTEROP_APP_URL, default http://localhost:3500; INTEROP_QUIET=1
// logs errors only; INTEROP_SIGNING_ALG, RS256 or ES256, default RS256). With port 0 it prints
// the port it got: `listening on http://127.0.0.1:PORT`.
//
// Around the provider, this program adds only what a deployment adds: the sign-in pages
// (devInteractions is off), an in-memory adapter, framing headers, and a development admin API
// (`/admin/*`, never expose it) that causes events through oidc-provider's own models and
// endpoints, so that the journeys and the benchmark can drive it. See NOTES.md beside it.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const [HOST, PORT] = (process.env.INTEROP_ADDR ?? '127.0.0.1:4500').split(':');
const APP_URL = process.env.INTEROP_APP_URL ?? 'http://localhost:3500';
const QUIET = process.env.INTEROP_QUIET === '1';
/**
 * How every token is signed (ID, access and logout tokens). RS256 by default: the algorithm most
 * providers sign with (OIDC Core §15.1 makes it mandatory for them), while the embedded provider
 * signs ES256, so the two runs prove both. The benchmark asks for ES256, to compare like with like.
 */
const SIGNING_ALG = process.env.INTEROP_SIGNING_ALG ?? 'RS256';
if (!['RS256', 'ES256'].includes(SIGNING_ALG)) throw new Error(`INTEROP_SIGNING_ALG: ${SIGNING_ALG}`);
/** The resource indicator of the app's protected API, and the `aud` of its access tokens. */
const API_RESOURCE = 'urn:demo-api';
const API_AUDIENCE = 'demo-api';
/** Clients that need no consent screen: the provider's own first-party app. */
const FIRST_PARTY = new Set(['demo-app']);

// Lifetimes as in end2end/provider.toml (seconds).
const LIFETIMES = {
  authorizationCode: 60,
  accessToken: 10,
  idToken: 300,
  session: 28800,
  refreshIdle: 28800,
  refreshAbsolute: 86400,
};

/** A few demo users of end2end/tests/users.ts: same usernames, passwords, subs and names. */
const USERS = [
  ['alice', 'wonderland', '248289761001', 'Alice Liddell'],
  ['bob', 'builder', '248289761002', 'Bob the Builder'],
  ['carol', 'typist', '248289761003', 'Carol Typist'],
  ['dave', 'twotabs', '248289761004', 'Dave Twotabs'],
  ['erin', 'replayed', '248289761005', 'Erin Replayed'],
  ['heidi', 'leaving', '248289761008', 'Heidi Leaving'],
  ['ivan', 'another', '248289761009', 'Ivan Another'],
  ['nina', 'fallback', '248289761014', 'Nina Fallback'],
  ['olga', 'twotabs2', '248289761015', 'Olga Signout'],
  ['pete', 'checked', '248289761016', 'Pete Checked'],
  ['rosa', 'backchannel', '248289761018', 'Rosa Backchannel'],
].map(([username, password, sub, name]) => ({ username, password, sub, name, email: `${username}@example.org` }));
const userBySub = new Map(USERS.map((user) => [user.sub, user]));
const userByName = new Map(USERS.map((user) => [user.username, user]));

const log = (...args) => QUIET || console.log(new Date().toISOString(), ...args);

// --- Storage ------------------------------------------------------------------------------------
// oidc-provider's own memory adapter is an LRU of 1,000 entries: a benchmark (or a long run)
// would evict live grants and sessions. This one keeps everything until it expires, with the
// indexes the adapter interface needs (sessions by uid, tokens by grant) and one the admin API
// needs (every record of a model, to find a user's sessions).

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const records = new Map(); // model -> Map(id -> { payload, expiresAt })
const sessionIdByUid = new Map();
const grantMembers = new Map(); // grantId -> Set of `${model} ${id}`
const table = (model) => records.get(model) ?? records.set(model, new Map()).get(model);

class Adapter {
  constructor(model) {
    this.model = model;
    this.rows = table(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.rows.set(id, { payload, expiresAt });
    if (this.model === 'Session') sessionIdByUid.set(payload.uid, id);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const members = grantMembers.get(payload.grantId) ?? grantMembers.set(payload.grantId, new Set()).get(payload.grantId);
      members.add(`${this.model} ${id}`);
    }
  }

  async find(id) {
    const row = this.rows.get(id);
    if (!row) return undefined;
    if (row.expiresAt <= Date.now()) {
      await this.destroy(id);
      return undefined;
    }
    return row.payload;
  }

  async findByUid(uid) {
    const id = sessionIdByUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const row = this.rows.get(id);
    if (row) row.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const row = this.rows.get(id);
    this.rows.delete(id);
    if (!row) return;
    if (this.model === 'Session' && sessionIdByUid.get(row.payload.uid) === id) sessionIdByUid.delete(row.payload.uid);
    grantMembers.get(row.payload.grantId)?.delete(`${this.model} ${id}`);
  }

  async revokeByGrantId(grantId) {
    const members = grantMembers.get(grantId);
    if (!members) return;
    for (const member of [...members]) {
      const [model, id] = member.split(' ');
      if (model === this.model) {
        this.rows.delete(id);
        members.delete(member);
      }
    }
    if (members.size === 0) grantMembers.delete(grantId);
  }
}

setInterval(() => {
  const now = Date.now();
  for (const [model, rows] of records) {
    const adapter = new Adapter(model);
    for (const [id, row] of rows) if (row.expiresAt <= now) adapter.destroy(id);
  }
}, 60_000).unref();

// --- What the admin API reports, kept from oidc-provider's events ------------------------------

const metrics = {
  token_requests: {},
  token_errors: {},
  authorize_requests: { none: 0, login: 0, consent: 0, default: 0 },
  refresh_tokens_reused: 0,
  families_revoked: 0,
  revocation_requests: 0,
  backchannel_logout: { sent: 0, failed: 0 },
  end_session: 0,
};
/** A refresh token family is a grant here: every refresh token of a sign-in shares its grantId. */
const families = new Map(); // grantId -> { id, sub, client_id, seq, rotations, revoked_reason, newest }
let familySeq = 0;

function family(grantId, seed) {
  let entry = families.get(grantId);
  if (!entry && seed) {
    entry = { id: grantId, sub: seed.accountId, client_id: seed.clientId, seq: (familySeq += 1), rotations: 0, revoked_reason: null, newest: null };
    families.set(grantId, entry);
  }
  return entry;
}

function familyView(entry) {
  const grantAlive = table('Grant').has(entry.id);
  return {
    id: entry.id,
    client_id: entry.client_id,
    rotations: entry.rotations,
    active: entry.revoked_reason === null && grantAlive,
    revoked_reason: entry.revoked_reason ?? (grantAlive ? null : 'expired'),
  };
}

function markRevoked(grantId, reason) {
  const entry = families.get(grantId);
  if (entry && entry.revoked_reason === null) {
    entry.revoked_reason = reason;
    metrics.families_revoked += 1;
    log(`family ${grantId} of ${entry.sub} revoked: ${reason}`);
  }
}

// --- The provider -------------------------------------------------------------------------------

const { privateKey } =
  SIGNING_ALG === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: SIGNING_ALG, use: 'sig' };

async function findAccount(_ctx, sub) {
  const user = userBySub.get(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    claims: async () => ({ sub, name: user.name, preferred_username: user.username, email: user.email, email_verified: true }),
  };
}

/**
 * The grant the authorization request runs under. For a first-party client, consent is implied
 * (as at the embedded provider): when the provider session has no live grant for it (first
 * sign-in, or its grant was revoked), one is made for what the request asks, so that a
 * `prompt=none` request from the app's hidden iframe can answer without the user.
 */
async function loadExistingGrant(ctx) {
  const { client, session } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
  if (existing || !FIRST_PARTY.has(client.clientId)) return existing;
  const grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
  grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
  if (ctx.oidc.requestParamClaims.size) grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
  for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers)) {
    grant.addResourceScope(indicator, [...ctx.oidc.requestParamScopes].filter((s) => server.scopes.has(s)).join(' '));
  }
  await grant.save();
  return grant;
}

const configuration = {
  clients: [
    {
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
      client_name: 'OIDC session demo',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${APP_URL}/auth/callback`, `${APP_URL}/auth/silent-callback`],
      post_logout_redirect_uris: [`${APP_URL}/`],
      backchannel_logout_uri: `${APP_URL}/auth/backchannel-logout`,
      // The logout token then names the provider session (`sid`), and ID tokens carry it.
      backchannel_logout_session_required: true,
      id_token_signed_response_alg: SIGNING_ALG,
    },
  ],
  clientDefaults: { id_token_signed_response_alg: SIGNING_ALG },
  enabledJWA: { idTokenSigningAlgValues: [SIGNING_ALG] },
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  adapter: Adapter,
  findAccount,
  loadExistingGrant,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  // The app redirects to `${issuer}/authorize` and the suite's helper expects the sign-in form
  // there; oidc-provider's own default is `/auth`.
  routes: { authorization: '/authorize' },
  interactions: { url: (_ctx, interaction) => `/authorize?interaction=${interaction.uid}` },
  // Trap: PKCE is optional for confidential clients by default.
  pkce: { required: () => true },
  // Trap: confidential clients' refresh tokens rotate only after 70% of their lifetime by default.
  rotateRefreshToken: true,
  // Trap: `offline_access` is dropped from any request without `prompt=consent` (OIDC Core §11),
  // and a refresh token issued without it dies with the provider session (expiresWithSession).
  // The app never sends prompt=consent (and its silent renew sends prompt=none), so a
  // first-party client gets offline refresh tokens by policy instead.
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || FIRST_PARTY.has(client.clientId)),
  expiresWithSession: async (ctx, code) => !code.scopes.has('offline_access') && !FIRST_PARTY.has(ctx.oidc.client.clientId),
  ttl: {
    AccessToken: LIFETIMES.accessToken,
    AuthorizationCode: LIFETIMES.authorizationCode,
    IdToken: LIFETIMES.idToken,
    Session: LIFETIMES.session,
    Grant: LIFETIMES.refreshAbsolute,
    Interaction: 3600,
    // Idle lifetime, never past the family's absolute one: rotation does not extend it.
    RefreshToken: (_ctx, token) => {
      const left = (token.iiat ?? Math.floor(Date.now() / 1000)) + LIFETIMES.refreshAbsolute - Math.floor(Date.now() / 1000);
      return Math.max(1, Math.min(LIFETIMES.refreshIdle, left));
    },
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    // Trap: access tokens are opaque unless they are for a resource server with a JWT format.
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? API_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return { audience: API_AUDIENCE, scope: 'reports', accessTokenFormat: 'jwt', accessTokenTTL: LIFETIMES.accessToken, jwt: { sign: { alg: SIGNING_ALG } } };
      },
    },
  },
  // Trap: oidc-provider refuses its outgoing requests (back-channel logout among them) to
  // loopback and private addresses, as SSRF protection: the POST to the app on localhost fails
  // with a bare "fetch failed". Lifted for the registered app's origin only.
  fetch: (url, options) => {
    if (new URL(url).origin !== new URL(APP_URL).origin) return globalThis.fetch(url, options);
    const { dispatcher: _ssrfProtection, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Sign-in error', Object.entries(out).map(([k, v]) => `<p><strong>${escape(k)}</strong>: ${escape(v)}</p>`).join(''));
  },
};

/**
 * RP-Initiated Logout's confirmation page. When the `id_token_hint` names this very provider
 * session, the user asked the app to sign out of it: no question (as at the embedded provider);
 * otherwise the provider asks.
 */
async function logoutSource(ctx, form) {
  const hint = ctx.oidc.entities.IdTokenHint?.payload;
  const { session, client } = ctx.oidc;
  const named = hint && client && hint.sub === session.accountId && hint.sid === session.sidFor(client.clientId);
  const yes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.type = 'html';
  ctx.body = named
    ? page('Signing out', `${yes}<p>Signing out…</p><script>document.getElementById('op.logoutForm').submit()</script>`)
    : page(
        'Sign out?',
        `${form}<p>Sign out of the provider?</p>
        <button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
        <button type="submit" form="op.logoutForm">No, stay signed in</button>`,
      );
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<p>You are signed out of the provider.</p>');
}

const issuerFor = (port) => process.env.INTEROP_ISSUER ?? `http://localhost:${port}`;
let provider;

// --- Events: metrics, families, and a log line for each thing a journey causes ------------------

function listen(p) {
  p.on('grant.saved', (grant) => family(grant.jti, grant));
  p.on('refresh_token.saved', (token) => {
    const entry = family(token.grantId, token);
    if (entry) entry.newest = token.jti;
  });
  p.on('refresh_token.consumed', (token) => {
    const entry = families.get(token.grantId);
    if (entry) entry.rotations += 1;
  });
  p.on('grant.success', (ctx) => {
    const type = ctx.oidc.params.grant_type;
    metrics.token_requests[type] = (metrics.token_requests[type] ?? 0) + 1;
  });
  p.on('grant.error', (ctx, error) => {
    const key = `${ctx.oidc.params?.grant_type ?? 'unknown'}: ${error.error}`;
    metrics.token_errors[key] = (metrics.token_errors[key] ?? 0) + 1;
    // The body says invalid_grant for reuse, expiry and not-found alike; only the detail differs.
    log(`token endpoint refused (${key}): ${error.error_detail ?? error.error_description}`);
    if (error.error_detail === 'refresh token already used') metrics.refresh_tokens_reused += 1;
  });
  p.on('grant.revoked', (ctx, grantId) => {
    const route = ctx.oidc.route;
    markRevoked(grantId, route === 'token' ? 'reuse' : route === 'revocation' ? 'revocation' : route);
  });
  p.on('revocation.error', (_ctx, error) => log(`revocation endpoint refused: ${error.error} (${error.error_description})`));
  p.on('end_session.success', () => {
    metrics.end_session += 1;
    log('provider session ended (RP-initiated logout)');
  });
  p.on('backchannel.success', (_ctx, client, sub, sid) => {
    metrics.backchannel_logout.sent += 1;
    log(`back-channel logout to ${client.clientId} for ${sub} (sid ${sid}): accepted`);
  });
  p.on('backchannel.error', (_ctx, error, client, sub) => {
    metrics.backchannel_logout.failed += 1;
    log(`back-channel logout to ${client.clientId} for ${sub} failed: ${error.message}`);
  });
  p.on('authorization.error', (_ctx, error) => log(`authorization error: ${error.error} (${error.error_description})`));
  p.on('server_error', (_ctx, error) => console.error('server_error', error));
}

// --- Sign-in pages (the interaction) ------------------------------------------------------------

const escape = (value) =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto}label{display:block;margin:.5rem 0}
[role=alert]{color:#a00}</style></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, username = '', error = '') {
  const alert = error ? `<p role="alert">${escape(error)}</p>` : '';
  return page(
    'Sign in',
    `<p>oidc-provider (interop)</p>${alert}
<form method="post" action="/authorize?interaction=${escape(uid)}" autocomplete="off">
<label>Username <input name="username" value="${escape(username)}" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form>`,
  );
}

async function interaction(req, res) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return send(res, 400, page('Sign-in expired', '<p role="alert">This sign-in has expired; start again from the app.</p>'));
  }
  const { uid, prompt, params } = details;
  if (prompt.name === 'login') {
    if (req.method !== 'POST') return send(res, 200, loginForm(uid));
    const form = new URLSearchParams(await readBody(req));
    const user = userByName.get(form.get('username') ?? '');
    const given = Buffer.from(form.get('password') ?? '');
    const ok = user && given.length === user.password.length && crypto.timingSafeEqual(given, Buffer.from(user.password));
    if (!ok) return send(res, 401, loginForm(uid, form.get('username') ?? '', 'Wrong username or password.'));
    log(`${user.username} signed in`);
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'consent' && FIRST_PARTY.has(params.client_id)) {
    // An existing grant that lacks something now asked for: consent is implied for this client.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'consent required' });
}

// --- Development admin API ----------------------------------------------------------------------

const json = (res, status, body) => send(res, status, JSON.stringify(body), 'application/json');

function familiesOf(sub) {
  return [...families.values()].filter((entry) => entry.sub === sub).sort((a, b) => b.seq - a.seq);
}

/** The user's current family: the newest one still alive. */
function currentFamily(sub) {
  return familiesOf(sub).find((entry) => familyView(entry).active);
}

/** Presents `refreshToken` to this provider's own token endpoint, as the app would. */
async function presentRefreshToken(refreshToken, clientId = 'demo-app', secret = 'demo-app-secret') {
  const response = await fetch(`${selfUrl}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: response.status, body: await response.json() };
}

/** Revokes a grant and every token of it, through oidc-provider's models, as an administrator. */
async function revokeGrant(grantId, reason) {
  await Promise.all([
    provider.AccessToken.revokeByGrantId(grantId),
    provider.RefreshToken.revokeByGrantId(grantId),
    provider.AuthorizationCode.revokeByGrantId(grantId),
    provider.Grant.adapter.destroy(grantId),
  ]);
  markRevoked(grantId, reason);
}

/**
 * Ends the user's provider sessions, as if they signed out of the provider elsewhere: each
 * session's clients get oidc-provider's own logout token (unless `backchannel` is false, as a
 * provider without back-channel logout would), grants that do not outlive the session are
 * revoked, and the session is destroyed (as oidc-provider's end_session does).
 */
async function endSessions(sub, backchannel) {
  let ended = 0;
  let sent = 0;
  for (const id of [...table('Session').keys()]) {
    const session = await provider.Session.find(id);
    if (!session || session.accountId !== sub) continue;
    for (const [clientId, authorization] of Object.entries(session.authorizations ?? {})) {
      const client = await provider.Client.find(clientId);
      if (!client) continue;
      if (backchannel && client.backchannelLogoutUri) {
        try {
          await client.backchannelLogout(sub, authorization.sid);
          metrics.backchannel_logout.sent += 1;
          sent += 1;
          log(`back-channel logout to ${clientId} for ${sub} (sid ${authorization.sid}): accepted`);
        } catch (error) {
          metrics.backchannel_logout.failed += 1;
          log(`back-channel logout to ${clientId} for ${sub} failed: ${error.message}`);
        }
      }
      if (authorization.grantId && !authorization.persistsLogout) await revokeGrant(authorization.grantId, 'logout');
    }
    await session.destroy();
    ended += 1;
  }
  log(`admin: ended ${ended} provider session(s) of ${sub}${backchannel ? '' : ' without back-channel logout'}`);
  return { ended, backchannel_logout_sent: sent };
}

/**
 * Sends oidc-provider's own logout token for `sub` (and the `sid` of each of the user's provider
 * sessions with the client, or the one given) to the client's back-channel URI, without ending
 * anything here; answers what the client said. (The embedded provider's defects are not offered:
 * forged tokens are its journeys' business.)
 */
async function logoutToken({ client_id: clientId = 'demo-app', sub, sid, defects = [] }) {
  if (defects.length) return [400, { error: 'defects are not supported here' }];
  const client = await provider.Client.find(clientId);
  if (!client?.backchannelLogoutUri) return [404, { error: 'no such client with a back-channel logout URI' }];
  const sids = new Set(sid ? [sid] : []);
  if (!sid) {
    for (const { payload } of table('Session').values()) {
      if (payload.accountId === sub && payload.authorizations?.[clientId]) sids.add(payload.authorizations[clientId].sid);
    }
  }
  let status = 200;
  for (const each of sids.size ? sids : [undefined]) {
    try {
      await client.backchannelLogout(sub, each);
      metrics.backchannel_logout.sent += 1;
      log(`admin: logout token to ${clientId} for ${sub} (sid ${each}): accepted`);
    } catch (error) {
      metrics.backchannel_logout.failed += 1;
      status = error.response?.status ?? 502;
      log(`admin: logout token to ${clientId} for ${sub} refused: ${error.message}`);
    }
  }
  return [200, { status, sids: [...sids] }];
}

/** Fresh refresh tokens for `sub`, each of a grant of its own (a family), for the benchmark. */
async function mintRefreshTokens(sub, count, clientId) {
  const client = await provider.Client.find(clientId);
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId: sub, clientId });
    grant.addOIDCScope('openid profile email');
    grant.addResourceScope(API_RESOURCE, '');
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: sub,
      client,
      grantId,
      gty: 'authorization_code',
      scope: 'openid profile email',
      resource: API_RESOURCE,
      rotations: 0,
      authTime: Math.floor(Date.now() / 1000),
    });
    tokens.push(await token.save());
  }
  return tokens;
}

async function admin(req, res, url) {
  // Development only, and never from a page of another site.
  const site = req.headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') return json(res, 403, { error: 'cross-site request refused' });
  const path = url.pathname;
  let match;
  if (req.method === 'GET' && path === '/admin/metrics') return json(res, 200, metrics);
  if (req.method === 'GET' && (match = path.match(/^\/admin\/users\/([^/]+)\/families$/))) {
    return json(res, 200, { families: familiesOf(match[1]).map(familyView) });
  }
  if (req.method !== 'POST') return json(res, 404, { error: 'not found' });
  if ((match = path.match(/^\/admin\/families\/([^/]+)\/revoke$/))) {
    if (!families.has(match[1])) return json(res, 404, { error: 'no such family' });
    await revokeGrant(match[1], 'admin');
    return json(res, 200, familyView(families.get(match[1])));
  }
  if (path === '/admin/logout-token') return json(res, ...(await logoutToken(JSON.parse((await readBody(req)) || '{}'))));
  if (!(match = path.match(/^\/admin\/users\/([^/]+)\/([a-z-]+)$/))) return json(res, 404, { error: 'not found' });
  const [, sub, action] = match;
  if (!userBySub.has(sub)) return json(res, 404, { error: 'no such user' });
  switch (action) {
    case 'simulate-reuse': {
      // A retired (consumed) refresh token of the current family, presented again: reuse
      // detection runs for real at the token endpoint.
      const current = currentFamily(sub);
      const retired = current && [...(grantMembers.get(current.id) ?? [])]
        .filter((member) => member.startsWith('RefreshToken '))
        .map((member) => member.split(' ')[1])
        .find((id) => table('RefreshToken').get(id)?.payload.consumed);
      if (!retired) return json(res, 409, { error: 'the user has no retired refresh token in a live family' });
      const answer = await presentRefreshToken(retired);
      log(`admin: replayed a retired refresh token of ${sub}: ${answer.status} ${answer.body.error ?? ''}`);
      return json(res, 200, { family: current.id, token_endpoint: answer });
    }
    case 'present-refresh-token': {
      // The newest refresh token the provider issued to the user, whatever became of it (use it
      // after a sign-out: a live one would be rotated under the app's feet).
      const newest = familiesOf(sub).find((entry) => entry.newest);
      if (!newest) return json(res, 409, { error: 'no refresh token was issued to the user' });
      return json(res, 200, { family: newest.id, token_endpoint: await presentRefreshToken(newest.newest) });
    }
    case 'end-session':
      return json(res, 200, await endSessions(sub, url.searchParams.get('backchannel') !== 'false'));
    case 'refresh-tokens': {
      const body = JSON.parse((await readBody(req)) || '{}');
      const count = Math.min(Number(body.count ?? 1), 10_000);
      return json(res, 200, { refresh_tokens: await mintRefreshTokens(sub, count, body.client_id ?? 'demo-app') });
    }
    default:
      return json(res, 404, { error: 'not found' });
  }
}

// --- HTTP -----------------------------------------------------------------------------------------

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  // The sign-in form and the admin API are never framed.
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('content-security-policy', "frame-ancestors 'none'");
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 1 << 20) req.destroy(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

let selfUrl;
const server = http.createServer();
server.keepAliveTimeout = 65_000;
server.listen(Number(PORT), HOST, () => {
  const { port } = server.address();
  selfUrl = `http://${HOST}:${port}`;
  provider = new Provider(issuerFor(port), configuration);
  listen(provider);
  // Framing (oidc-provider sets no framing header): only the authorization endpoint may be
  // framed, by the app (its hidden iframe for prompt=none), and nothing else at all.
  const appOrigin = new URL(APP_URL).origin;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/authorize' || ctx.path.startsWith('/authorize/')) {
      ctx.set('content-security-policy', `frame-ancestors ${appOrigin}`);
    } else {
      ctx.set('x-frame-options', 'DENY');
      ctx.set('content-security-policy', "frame-ancestors 'none'");
    }
  });
  const handle = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url, selfUrl);
    const route = async () => {
      if (url.pathname === '/authorize' && url.searchParams.has('interaction')) return interaction(req, res);
      if (url.pathname.startsWith('/admin/')) return admin(req, res, url);
      // The browser asks for one beside the sign-in form; a 404 would be a console error.
      if (url.pathname === '/favicon.ico') return send(res, 204, '');
      if (url.pathname === '/token/revocation') metrics.revocation_requests += 1;
      if (url.pathname === '/authorize') {
        const prompt = url.searchParams.get('prompt') ?? 'default';
        metrics.authorize_requests[prompt] = (metrics.authorize_requests[prompt] ?? 0) + 1;
      }
      return handle(req, res);
    };
    route().catch((error) => {
      console.error(error);
      if (!res.headersSent) json(res, 500, { error: 'server_error' });
    });
  });
  console.log(`listening on ${selfUrl} (issuer ${provider.issuer})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
