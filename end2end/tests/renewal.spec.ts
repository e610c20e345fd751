import { expect } from '@playwright/test';
import {
  holdClock,
  JWT_PATTERN,
  logEntries,
  ownRenewals,
  PROVIDER,
  providerFamilies,
  recordConsoleErrors,
  setVisibility,
  signIn,
  signInAtProvider,
  test,
  waitForHydration,
} from './helpers';
import { USERS } from './users';

/**
 * Renewal while the user works, with the suite's ten-second access tokens: the client renews
 * three to four seconds ahead of expiry, so a minute holds about eight renewals.
 */
test.describe('renewal while the user works', () => {
  test('typing for a minute across renewals keeps every character, the caret and the element', { tag: '@interop' }, async ({
    page,
    providerUrl,
  }) => {
    const errors = recordConsoleErrors(page);
    await signIn(page, '/form', USERS.carol, providerUrl);
    const details = page.getByLabel('What happened, in detail');
    await details.click();
    // A marker on the element itself: a re-mounted textarea would be a new element without it.
    await details.evaluate((el) => ((el as HTMLTextAreaElement & { marker?: string }).marker = 'original'));

    const chunk = 'The quick brown fox jumps over the lazy dog. ';
    let typed = '';
    const started = Date.now();
    while (Date.now() - started < 62_000) {
      await page.keyboard.type(chunk, { delay: 35 });
      typed += chunk;
    }

    const state = await details.evaluate((el) => {
      const area = el as HTMLTextAreaElement & { marker?: string };
      return {
        value: area.value,
        marker: area.marker,
        caret: area.selectionStart,
        focused: document.activeElement === area,
      };
    });
    expect(state.value).toBe(typed);
    expect(state.marker).toBe('original');
    expect(state.caret).toBe(typed.length);
    expect(state.focused).toBe(true);
    const renewals = await ownRenewals(page).count();
    expect(renewals).toBeGreaterThanOrEqual(4);
    await expect(page.getByTestId('renewal-count')).toHaveText(String(renewals));
    await expect(page.getByTestId('last-outcome')).toHaveText('renewed');

    // One more renewal while the user pauses: nothing on the page moves.
    const scroll = () => details.evaluate((el) => ({ page: window.scrollY, area: el.scrollTop }));
    const before = await scroll();
    await expect(ownRenewals(page)).toHaveCount(renewals + 1, { timeout: 10_000 });
    expect(await scroll()).toEqual(before);
    expect(await details.evaluate((el) => document.activeElement === el)).toBe(true);
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
    await expect(page.getByTestId('auth-status')).toHaveText(/signed in|renewing/);
    // The draft went to storage as the user typed; it holds the text, never a token.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    expect(stored).toContain('The quick brown fox');
    expect(stored).not.toMatch(JWT_PATTERN);
    expect(errors).toEqual([]);
  });

  test('two tabs for a minute make one token request per renewal cycle', async ({ context, request }) => {
    const first = await context.newPage();
    await signIn(first, '/form', USERS.dave);
    const second = await context.newPage();
    await second.goto('/form');
    await expect(second.getByLabel('Title')).toBeVisible();
    await waitForHydration(second);

    await first.waitForTimeout(60_000);

    // Every token request the provider saw was a renewal one of the tabs made and used (read
    // until the two agree: a renewal may be on its way back to a tab at the moment of reading)...
    let family = { active: false, rotations: 0 };
    await expect
      .poll(async () => {
        [family] = await providerFamilies(request, USERS.dave.sub);
        return family.rotations - (await ownRenewals(first).count()) - (await ownRenewals(second).count());
      })
      .toBe(0);
    expect(family.active).toBe(true);
    // ...and there was one per cycle: about 60 / 6.5 of them, not twice that.
    expect(family.rotations).toBeGreaterThanOrEqual(6);
    expect(family.rotations).toBeLessThanOrEqual(11);
    // Each tab adopted the renewals the other one made.
    for (const tab of [first, second]) {
      await expect(logEntries(tab, 'userSignedOut')).toHaveCount(0);
      expect(await logEntries(tab, 'userLoaded', /renewed in another tab/).count()).toBeGreaterThan(0);
    }
    await expect(second.getByTestId('token-expiry')).toHaveText((await first.getByTestId('token-expiry').textContent())!);
  });

  test('without Web Locks, two tabs still share renewals and never trip reuse detection', async ({
    context,
    request,
  }) => {
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
    });
    const first = await context.newPage();
    await signIn(first, '/form', USERS.mia);
    const second = await context.newPage();
    await second.goto('/form');
    await waitForHydration(second);
    expect(await second.evaluate(() => navigator.locks)).toBeUndefined();

    await first.waitForTimeout(30_000);

    const [family] = await providerFamilies(request, USERS.mia.sub);
    expect(family.active, 'no refresh token was ever presented twice').toBe(true);
    expect(family.rotations).toBeGreaterThanOrEqual(3);
    expect(family.rotations).toBeLessThanOrEqual(7);
    // Shared through the tabs' channel: a tab took up a renewal the other made (which tab does
    // is left to chance without a lock).
    let adopted = 0;
    for (const tab of [first, second]) {
      await expect(logEntries(tab, 'userSignedOut')).toHaveCount(0);
      adopted += await logEntries(tab, 'userLoaded', /renewed in another tab/).count();
    }
    expect(adopted).toBeGreaterThan(0);
  });

  test('a reused refresh token ends the session everywhere; the draft survives sign-in', async ({
    page,
    context,
    request,
  }) => {
    await signIn(page, '/form', USERS.erin);
    await page.getByLabel('Title').fill('Server room flooded');
    await page.getByLabel('What happened, in detail').fill('Water came in under the door at 09:10.');
    // The family has a retired token once the app has renewed.
    await expect(ownRenewals(page).first()).toBeVisible({ timeout: 15_000 });
    const other = await context.newPage();
    await other.goto('/');
    await waitForHydration(other);

    // From here only the back channel can tell the app: no renewal reaches the server (it would
    // find the family revoked), and check_session cannot ask the provider.
    await context.route('**/auth/refresh', () => {});
    await context.route('**/check-session/state', () => {});
    // Reuse revokes the family and ends the provider session, which tells the app (back-channel).
    const simulated = await request.post(`${PROVIDER}/admin/users/${USERS.erin.sub}/simulate-reuse`);
    expect(simulated.status()).toBe(200);

    // "Signed out elsewhere", in every tab, from the server's push channel.
    const notice = page.getByTestId('session-ended');
    await expect(notice).toContainText('You were signed out elsewhere.');
    await expect(notice).toContainText('Your draft is saved on this device.');
    for (const tab of [page, other]) {
      await expect(logEntries(tab, 'userSessionChanged', /the server ended the session/)).toHaveCount(1);
    }
    await expect(other.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
    await context.unroute('**/auth/refresh');
    await context.unroute('**/check-session/state');
    await expect(page).toHaveURL('/form');
    await expect(page.getByLabel('Title')).toHaveValue('Server room flooded');
    // The family was revoked for reuse, and the server's session ended with the provider's
    // (back-channel logout), not only this tab's view of it.
    const [family] = await providerFamilies(request, USERS.erin.sub, PROVIDER);
    expect(family.revoked_reason).toBe('reuse');
    await expect.poll(async () => (await (await page.request.get('/auth/session')).json()).authenticated).toBe(false);

    await notice.getByRole('link', { name: 'Sign in again' }).click();
    await signInAtProvider(page, USERS.erin.username, USERS.erin.password);
    await expect(page).toHaveURL('/form');
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('Server room flooded');
    await expect(page.getByLabel('What happened, in detail')).toHaveValue('Water came in under the door at 09:10.');
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
  });

  test('a revoked refresh token family is replaced through the iframe, without the user', { tag: '@interop' }, async ({
    page,
    request,
    providerUrl,
  }) => {
    await signIn(page, '/form', USERS.nina, providerUrl);
    await page.getByLabel('Title').fill('Kept through it all');
    await expect(ownRenewals(page, 'refresh token').first()).toBeVisible({ timeout: 15_000 });

    // An administrator revokes the family; the provider session lives on.
    const [family] = await providerFamilies(request, USERS.nina.sub, providerUrl);
    const revoked = await request.post(`${providerUrl}/admin/families/${family.id}/revoke`);
    expect(revoked.status()).toBe(200);

    await expect(ownRenewals(page, 'iframe')).toHaveCount(1, { timeout: 15_000 });
    await expect(logEntries(page, 'silentRenewError', /refresh token refused \(invalid_grant\); trying the iframe/)).toHaveCount(1);
    // The iframe brought a new refresh token (a new family): the next renewal uses it again.
    await expect(ownRenewals(page, 'refresh token')).toHaveCount(2, { timeout: 15_000 });
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
    await expect(page.getByLabel('Title')).toHaveValue('Kept through it all');
    const families = await providerFamilies(request, USERS.nina.sub, providerUrl);
    expect(families[0].active).toBe(true);
    expect(families[1].revoked_reason).toBe('admin');
  });

  test('submitting after the access token expired in a hidden tab succeeds', async ({ page, request }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.frank);
    // The page's timers stand still from here: the autosave's pause never ends.
    await holdClock(page);
    await page.getByLabel('Title').fill('Printer on fire');
    await page.getByLabel('Summary').fill('Smoke, then flames.');
    const stored = () => page.evaluate(() => JSON.stringify({ ...localStorage }));
    expect(await stored()).not.toContain('Smoke, then flames.');

    // Hidden: the draft is saved at once, whatever the autosave was waiting for; and the
    // browser throttles, then freezes, the tab's timers: no renewal runs.
    await setVisibility(page, 'hidden');
    expect(await stored()).toContain('Smoke, then flames.');
    await new Promise((resolve) => setTimeout(resolve, 13_000));
    const session = await (await page.request.get('/auth/session')).json();
    expect(session.access_token_expires_in, 'the access token expired while the tab slept').toBe(0);

    // Back, and straight to Submit, before the tab's own timers catch up: the server renews.
    await page.clock.resume();
    await setVisibility(page, 'visible');
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect(page.getByTestId('form-result')).toHaveText('Received 34 characters.');
    await expect(ownRenewals(page)).toHaveCount(0);
    const [family] = await providerFamilies(request, USERS.frank.sub);
    expect(family.rotations, 'the server renewed before calling the API').toBe(1);
  });

  test('a tab that becomes visible after the token expired renews at once', async ({ page }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.kate);
    await setVisibility(page, 'hidden');
    const heldAt = await holdClock(page);
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    // The page's clock shows the time outside, but not one of its timers has fired.
    await page.clock.setSystemTime(heldAt + 11_000);
    await setVisibility(page, 'visible');
    await expect(logEntries(page, 'accessTokenExpiring', /the tab became visible/)).toHaveCount(1);
    await expect(ownRenewals(page)).toHaveCount(1);
    await expect(page.getByTestId('auth-status')).toHaveText('signed in');
  });

  test('a machine that wakes from sleep after the token expired renews at once', async ({ page }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.liam);
    const heldAt = await holdClock(page);
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    // Waking: the clock jumps, and the first timer to fire (the heartbeat) fires far too late.
    await page.clock.setSystemTime(heldAt + 11_000);
    await page.clock.resume();
    await expect(logEntries(page, 'accessTokenExpiring', /the machine woke up/)).toHaveCount(1);
    await expect(ownRenewals(page).first()).toBeVisible();
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
  });

  test('a renewal that fails offline is retried as soon as the network is back', async ({ page, context }) => {
    await signIn(page, '/form', USERS.judy);
    await expect(page.getByTestId('auth-status')).toHaveText('signed in');
    await context.setOffline(true);
    await expect(logEntries(page, 'silentRenewError', /transient/).first()).toBeVisible({ timeout: 15_000 });
    // Retries back off while the network is gone, and the access token runs out meanwhile.
    await expect(logEntries(page, 'accessTokenExpired')).toHaveCount(1, { timeout: 15_000 });
    await expect(page.getByTestId('auth-status')).toHaveText('signed in');
    await expect(page.getByTestId('last-outcome')).toHaveText(/^transient/);
    await expect(page.getByTestId('last-error')).toHaveText('the server cannot be reached (offline?)');
    await expect(page.getByTestId('renewal-trouble')).toContainText('It will retry by itself.');
    await context.setOffline(false);
    await expect(logEntries(page, 'accessTokenExpiring', /network came back/)).toHaveCount(1);
    await expect(ownRenewals(page).first()).toBeVisible();
    await expect(page.getByTestId('last-outcome')).toHaveText('renewed');
    await expect(page.getByTestId('last-error')).toHaveText('');
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
  });
});
