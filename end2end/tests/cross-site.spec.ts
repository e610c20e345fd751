import { expect, test } from '@playwright/test';
import { logEntries, ownRenewals, recordConsoleErrors, signIn } from './helpers';
import { USERS } from './users';

/**
 * The app on localhost:3300, its provider on 127.0.0.1:4300: another site, so the provider's
 * cookies never reach its frames inside the app, as when third-party cookies are blocked. The
 * check_session iframe then answers `changed` every time (OIDC Session Management 1.0 §5.1).
 */
const PROVIDER = 'http://127.0.0.1:4300';

test('with the provider on another site, the breaker trips and nobody is signed out', async ({ page }) => {
  const errors = recordConsoleErrors(page);
  await signIn(page, '/form', USERS.alice, PROVIDER);
  await page.getByLabel('Title').fill('Across sites');

  await expect(logEntries(page, 'checkSessionStopped', /third-party cookies/)).toHaveCount(1, { timeout: 15_000 });
  const notes = await logEntries(page, 'userSessionChanged').count();
  expect(notes).toBe(2);
  // No loop: nothing more from check_session, and renewal carries on with the refresh token.
  await expect(ownRenewals(page, 'refresh token').first()).toBeVisible({ timeout: 15_000 });
  await page.waitForTimeout(5_000);
  expect(await logEntries(page, 'userSessionChanged').count()).toBe(notes);
  await expect(logEntries(page, 'checkSessionStopped')).toHaveCount(1);
  await expect(page.getByTestId('session-ended')).toHaveCount(0);
  await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
  await expect(page.getByLabel('Title')).toHaveValue('Across sites');
  // The stopped monitor left no listener behind: a message to the window is no error.
  await page.evaluate(() => window.postMessage('after the breaker', window.location.origin));
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
  expect(errors).toEqual([]);
});
