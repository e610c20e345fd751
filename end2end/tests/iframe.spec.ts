import { expect, test } from '@playwright/test';
import { holdClock, logEntries, ownRenewals, signIn, signInAtProvider, waitForHydration } from './helpers';
import { USERS } from './users';

/**
 * Silent renew through a hidden iframe, against the app on :3200 that asks for no refresh token
 * (RENEW_STRATEGY=iframe), with an iframe timeout of 3 s. The journeys share that app's provider
 * (:4200), whose admin API one of them slows down: they run one after another.
 */
const PROVIDER = 'http://localhost:4200';
test.describe.configure({ mode: 'serial' });

test.describe('silent renew through the hidden iframe', () => {
  test('typing across three iframe renewals keeps every character and the caret', async ({ page, request }) => {
    await signIn(page, '/form', USERS.carol, PROVIDER);
    const silentBefore = (await (await request.get(`${PROVIDER}/admin/metrics`)).json()).authorize_requests.none;
    const details = page.getByLabel('What happened, in detail');
    await details.click();
    let typed = '';
    while ((await ownRenewals(page, 'iframe').count()) < 3) {
      await page.keyboard.type('Smoke in the corridor. ', { delay: 30 });
      typed += 'Smoke in the corridor. ';
    }
    await expect(details).toHaveValue(typed);
    expect(await details.evaluate((el) => (el as HTMLTextAreaElement).selectionStart)).toBe(typed.length);
    await expect(details).toBeFocused();
    await expect(ownRenewals(page, 'refresh token')).toHaveCount(0);
    const silentAfter = (await (await request.get(`${PROVIDER}/admin/metrics`)).json()).authorize_requests.none;
    expect(silentAfter - silentBefore).toBeGreaterThanOrEqual(3);
    // The iframe is gone after each renewal, and no token ever reached the page.
    await expect(page.locator('iframe[title="session renewal"]')).toHaveCount(0);
    const session = await (await page.request.get('/auth/session')).json();
    expect(session.has_refresh_token ?? false).toBe(false);
  });

  test('when the provider session has ended, the next renewal asks for sign-in and the draft comes back', async ({
    page,
    request,
  }) => {
    // check_session cannot ask the provider: only the next renewal can find out.
    await page.route('**/check-session/state', () => {});
    await signIn(page, '/form', USERS.dave, PROVIDER);
    await page.getByLabel('Title').fill('Broken window');
    await expect(ownRenewals(page, 'iframe').first()).toBeVisible({ timeout: 15_000 });

    const ended = await request.post(`${PROVIDER}/admin/users/${USERS.dave.sub}/end-session?backchannel=false`);
    expect(ended.status()).toBe(200);
    const notice = page.getByTestId('session-ended');
    await expect(notice).toBeVisible({ timeout: 15_000 });
    await expect(logEntries(page, 'silentRenewError', /renewal refused \(iframe\): login_required/)).toHaveCount(1);
    await expect(logEntries(page, 'userSessionChanged', /check_session/)).toHaveCount(0);
    await expect(page.getByLabel('Title')).toHaveValue('Broken window');

    await notice.getByRole('link', { name: 'Sign in again' }).click();
    await signInAtProvider(page, USERS.dave.username, USERS.dave.password, PROVIDER);
    await expect(page).toHaveURL('/form');
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('Broken window');
  });

  test('messages from another origin or another window are ignored and logged', async ({ page, context, request }) => {
    await signIn(page, '/form', USERS.erin, PROVIDER);
    const forged = { type: 'oidc-silent-renew', outcome: 'login_required' };

    // Another origin: 127.0.0.1 is not localhost, though the server is the same.
    const [popup] = await Promise.all([
      context.waitForEvent('page'),
      page.evaluate(() => window.open('http://127.0.0.1:3200/auth/session', 'other')),
    ]);
    await popup.waitForLoadState();
    await popup.evaluate((message) => window.opener.postMessage(message, '*'), forged);
    await expect(logEntries(page, 'silentRenewError', /another origin \(http:\/\/127\.0\.0\.1:3200\)/)).toHaveCount(1);

    // The app's own origin, but not the iframe it opened, while that iframe's renewal is waiting
    // for its answer (the provider made slow, though not past the 3 s timeout): the forged
    // outcome must not finish it.
    const slow = await request.post(`${PROVIDER}/admin/delay`, { data: { authorize_ms: 2_000 } });
    expect(slow.status()).toBe(200);
    try {
      await expect(page.locator('iframe[title="session renewal"]')).toHaveCount(1, { timeout: 15_000 });
      await page.evaluate((message) => window.postMessage(message, window.location.origin), forged);
      await expect(logEntries(page, 'silentRenewError', /a window this page did not open/)).toHaveCount(1);
      // That renewal ends as the provider answers: renewed.
      await expect(ownRenewals(page, 'iframe').first()).toBeVisible({ timeout: 15_000 });
    } finally {
      await request.post(`${PROVIDER}/admin/delay`, { data: { authorize_ms: 0 } });
    }

    // Neither was acted on: no sign-out.
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
  });

  test('a report sent as the access token runs out: the server cannot renew, the iframe does, and the report goes on the next try', async ({
    page,
  }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.grace, PROVIDER);
    await page.getByLabel('Title').fill('Fire door propped open');
    // The page's timers stand still: no renewal is scheduled, and the access token runs low.
    await holdClock(page);
    await expect
      .poll(async () => (await (await page.request.get('/auth/session')).json()).access_token_expires_in, {
        timeout: 15_000,
      })
      .toBeLessThan(5);
    const renewalsBefore = await ownRenewals(page, 'iframe').count();

    // Too little time left to send it: the server would renew first, and has no refresh token.
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect(page.getByTestId('form-result')).toContainText('the session had to be renewed first');
    await expect(logEntries(page, 'accessTokenExpiring', /the server could not use the session/)).toHaveCount(1);
    await expect(ownRenewals(page, 'iframe')).toHaveCount(renewalsBefore + 1);
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
    await expect(page.getByLabel('Title')).toHaveValue('Fire door propped open');

    await page.getByRole('button', { name: 'Submit' }).click();
    await expect(page.getByTestId('form-result')).toContainText('Received');
  });

  test('a slow provider: the timeout fires, retries stay within the bound, the session lasts until expiry', async ({
    page,
    request,
  }) => {
    await signIn(page, '/form', USERS.frank, PROVIDER);
    await page.getByLabel('Summary').fill('Everything is slow today.');
    const slow = await request.post(`${PROVIDER}/admin/delay`, { data: { authorize_ms: 5_000 } });
    expect(slow.status()).toBe(200);
    try {
      const timeouts = logEntries(page, 'silentRenewError', /did not answer in time/);
      await expect(timeouts.first()).toBeVisible({ timeout: 15_000 });
      await expect(page.getByTestId('renewal-trouble')).toContainText('did not answer in time');
      await expect(logEntries(page, 'silentRenewError', /no more tries before the access token expires/)).toHaveCount(1, {
        timeout: 20_000,
      });
      // Kept until the access token really expires, then the user is asked to sign in.
      await expect(logEntries(page, 'accessTokenExpired')).toHaveCount(1, { timeout: 15_000 });
      await expect(page.getByTestId('session-ended')).toBeVisible();
      await expect(timeouts).toHaveCount(3);
      await expect(page.getByLabel('Summary')).toHaveValue('Everything is slow today.');
    } finally {
      await request.post(`${PROVIDER}/admin/delay`, { data: { authorize_ms: 0 } });
    }
  });
});
