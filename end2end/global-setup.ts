/** Waits until every app answers: scripts/e2e.sh starts them and the tests at the same time. */
export default async function globalSetup(): Promise<void> {
  await waitFor(`${process.env.APP_URL ?? 'http://localhost:3000'}/auth/session`);
  await waitFor(`${REDIS_APP}/auth/session`);
  await waitFor(`${IFRAME_APP}/auth/session`);
  await waitFor(`${CROSS_SITE_APP}/auth/session`);
  await waitFor(`${INTEROP_APP}/auth/session`);
  await waitFor(`${FAULTS_APP}/auth/session`);
}

/** The sixth app, whose provider the fault panel's journeys slow down and break (tests/faults.spec.ts). */
export const FAULTS_APP = process.env.FAULTS_APP_URL ?? 'http://localhost:3600';

/** The second app, whose sessions live in Redis (tests/redis.spec.ts). */
export const REDIS_APP = process.env.REDIS_APP_URL ?? 'http://localhost:3100';
/** The third app, which renews through the hidden iframe only (tests/iframe.spec.ts). */
export const IFRAME_APP = process.env.IFRAME_APP_URL ?? 'http://localhost:3200';
/** The fourth app, whose provider is on another site (tests/cross-site.spec.ts). */
export const CROSS_SITE_APP = process.env.CROSS_SITE_APP_URL ?? 'http://localhost:3300';

/** The fifth app, whose provider is panva's oidc-provider (tests/interop.spec.ts, @interop). */
export const INTEROP_APP = process.env.INTEROP_APP_URL ?? 'http://localhost:3500';

async function waitFor(target: string): Promise<void> {
  const url = target.replace('localhost', '127.0.0.1');
  const deadline = Date.now() + 120_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the app did not come up at ${url}: ${String(lastError)}`);
}
