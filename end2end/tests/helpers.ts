import { test as base, expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';

/** The embedded provider of the main app (:3000). */
export const PROVIDER = 'http://localhost:4000';

/** What a Playwright project sets for the journeys that run against more than one provider. */
export interface ProviderOptions {
  /**
   * The provider of the project's app: its issuer, where its sign-in form is, and where its
   * development admin API (`/admin/*`) answers. The embedded provider by default; the `interop`
   * project sets panva's oidc-provider (end2end/interop/provider.mjs).
   */
  providerUrl: string;
}

/**
 * `test` with the project's provider as a fixture. The journeys tagged `@interop` use it for
 * every provider URL, and the `interop` project runs them a second time against another
 * provider, with the same app code and only its settings changed.
 */
export const test = base.extend<ProviderOptions>({
  providerUrl: [PROVIDER, { option: true }],
});

/** A compact JWS (header.payload.signature, base64url JSON): what a leaked token would look like. */
export const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}/;

/** On the provider's sign-in form: signs in as a demo user. */
export async function signInAtProvider(
  page: Page,
  username = 'alice',
  password = 'wonderland',
  provider = PROVIDER,
): Promise<void> {
  await expect(page).toHaveURL(new RegExp(`^${provider}/authorize\\?`));
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Waits until the wasm has hydrated the page, so that clicks go to the client-side code. The
 * debug build's wasm is large, and with four journeys at once on two cores it can take a while.
 */
export async function waitForHydration(page: Page): Promise<void> {
  await expect(page.locator('body[data-hydrated]')).toHaveCount(1, { timeout: 30_000 });
}

/**
 * Collects what the page reports as errors: CSP violations, hydration mismatches, panics of the
 * wasm, failed loads. A journey that ends with an empty list ran clean.
 */
export function recordConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/** The provider's admin API (development only), which the journeys read figures from. */
export async function providerFamilies(
  request: APIRequestContext,
  sub: string,
  provider = PROVIDER,
): Promise<Family[]> {
  const response = await request.get(`${provider}/admin/users/${sub}/families`);
  expect(response.ok()).toBe(true);
  return (await response.json()).families;
}

export interface Family {
  id: string;
  rotations: number;
  active: boolean;
  revoked_reason: string | null;
}

/** The event log's entries of one kind whose text matches `detail`. */
export function logEntries(page: Page, event: string, detail?: RegExp): Locator {
  const entries = page.getByTestId('event-log').locator(`li[data-event="${event}"]`);
  return detail ? entries.filter({ hasText: detail }) : entries;
}

/** Renewals this tab made itself (not ones it adopted from another tab), by either path or one. */
export function ownRenewals(page: Page, path?: 'refresh token' | 'iframe'): Locator {
  const detail = path ? new RegExp(`renewed \\(${path}\\)`) : /renewed \((refresh token|iframe)\)/;
  return logEntries(page, 'userLoaded', detail);
}

/** Opens `path`, signs in as `user` at the provider, and waits for the hydrated page. */
export async function signIn(
  page: Page,
  path: string,
  user: { username: string; password: string },
  provider = PROVIDER,
): Promise<void> {
  await page.goto(path);
  await signInAtProvider(page, user.username, user.password, provider);
  await expect(page).toHaveURL(path);
  await waitForHydration(page);
}

/**
 * Stops the page's clock (installed with `page.clock.install()`) a second from now, and returns
 * that moment: from then on its timers stand still until the clock is resumed. A second ahead,
 * so that on a loaded machine the page's clock cannot have passed it by the time it is asked to
 * stop there (Playwright refuses to go back).
 */
export async function holdClock(page: Page): Promise<number> {
  const at = (await page.evaluate(() => Date.now())) + 1_000;
  await page.clock.pauseAt(at);
  return at;
}

/**
 * Makes the page believe it is hidden or visible, as when the user switches tabs: headless
 * Chromium never hides a page by itself. The page sees `document.visibilityState` change and a
 * `visibilitychange` event, as in a real switch.
 */
export async function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
  await page.evaluate((state) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, state);
}
