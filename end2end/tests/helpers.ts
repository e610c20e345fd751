import { expect, type Page } from '@playwright/test';

export const PROVIDER = 'http://localhost:4000';

/** A compact JWS (header.payload.signature, base64url JSON): what a leaked token would look like. */
export const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}/;

/** On the provider's sign-in form: signs in as a demo user. */
export async function signInAtProvider(page: Page, username = 'alice', password = 'wonderland'): Promise<void> {
  await expect(page).toHaveURL(new RegExp(`^${PROVIDER}/authorize\\?`));
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the wasm has hydrated the page, so that clicks go to the client-side code. */
export async function waitForHydration(page: Page): Promise<void> {
  await expect(page.locator('body[data-hydrated]')).toHaveCount(1);
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
