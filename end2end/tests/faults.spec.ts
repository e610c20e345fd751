import { expect, type Locator, type Page } from '@playwright/test';
import { providerFamilies, logEntries, recordConsoleErrors, signIn, signInAtProvider, test, waitForHydration } from './helpers';
import { FAULT_USERS } from './users';

/**
 * The fault panel, one journey per button, against the app on :3600 whose embedded provider
 * (:4600, end2end/provider-faults.toml) issues two-minute access tokens: nothing renews unless
 * the journey makes it. The journeys run one after another (the `faults` project), since the
 * slow provider and the outage are switches of the whole provider.
 */
const PROVIDER = process.env.FAULTS_PROVIDER_URL ?? 'http://localhost:4600';

/** Where the tour's screenshots go: SCREENSHOTS_DIR (scripts/screenshots.sh: docs/screenshots/). */
const SCREENSHOTS = process.env.SCREENSHOTS_DIR ?? 'test-results/screenshots';

test.use({ viewport: { width: 1280, height: 860 } });

async function openDashboard(page: Page, user: { username: string; password: string }): Promise<void> {
  await signIn(page, '/session', user, PROVIDER);
  await expect(page.getByTestId('fault-panel')).toBeVisible();
  await expect(page.getByTestId('dash-status')).toHaveText('signed in');
  // A switch the server still counts as on (a journey before failed with it on) would be
  // turned the wrong way by the next click: fail here, where it shows.
  for (const name of ['slow-provider', 'provider-down']) {
    await expect(faultButton(page, name)).toHaveAttribute('aria-pressed', 'false');
  }
}

/**
 * The provider's switches off through its admin API, whatever the page could still do: a
 * journey that failed with the session ended (the panel's buttons disabled) or the page closed
 * must not leave the provider slow or down for the journeys after it.
 */
test.afterEach(async ({ request }) => {
  expect((await request.post(`${PROVIDER}/admin/delay`, { data: { authorize_ms: 0, token_ms: 0 } })).ok()).toBe(true);
  expect((await request.post(`${PROVIDER}/admin/outage`, { data: { token: false } })).ok()).toBe(true);
});

function faultButton(page: Page, name: string): Locator {
  return page.locator(`button[data-fault="${name}"]`);
}

async function inject(page: Page, name: string): Promise<void> {
  await faultButton(page, name).click();
  await expect(page.getByTestId('fault-result')).not.toHaveText(/^(Injecting|Not injected)/);
}

function journal(page: Page, step: string, outcome?: string): Locator {
  const outcomeFilter = outcome ? `[data-outcome="${outcome}"]` : '';
  return page.locator(`[data-testid=journal-entry][data-step="${step}"]${outcomeFilter}`);
}

/** Turns a switch off through the panel, if the panel still can (else `afterEach` does it). */
async function switchOff(page: Page, name: string): Promise<void> {
  const button = faultButton(page, name);
  if (page.isClosed() || !(await button.isEnabled({ timeout: 1_000 }).catch(() => false))) {
    return;
  }
  if ((await button.getAttribute('aria-pressed')) === 'true') {
    await button.click();
    await expect(button).toHaveAttribute('aria-pressed', 'false');
  }
}

test('expire the access token now, from the keyboard: the app renews at once', async ({ page }) => {
  const errors = recordConsoleErrors(page);
  await openDashboard(page, FAULT_USERS.tina);
  await expect(journal(page, 'refresh_token')).toHaveCount(0);

  await faultButton(page, 'expire-access-token').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('fault-result')).toHaveText('the access token counts as expired');

  // The fault on the timeline, then the renewal it caused, by the refresh token.
  await expect(journal(page, 'fault').first()).toContainText('expire-access-token');
  await expect(journal(page, 'refresh_token', 'ok')).toHaveCount(1);
  await expect(page.getByTestId('journal-entry').first()).toHaveAttribute('data-step', 'refresh_token');
  await expect(page.locator('svg.timeline line.mark.fault')).toHaveCount(1);
  await expect(page.getByTestId('rotations')).toHaveText('1');
  await expect(page.getByTestId('dash-renewals')).toHaveText('1');
  await expect.poll(async () => Number(await page.getByTestId('token-countdown').getAttribute('data-seconds'))).toBeGreaterThan(100);
  expect(errors).toEqual([]);
});

test('a slow provider: the renewal waits for it, and says so meanwhile', async ({ page }) => {
  await openDashboard(page, FAULT_USERS.uma);
  try {
    await inject(page, 'slow-provider');
    await expect(faultButton(page, 'slow-provider')).toHaveAttribute('aria-pressed', 'true');
    await inject(page, 'expire-access-token');
    await expect(page.getByTestId('dash-status')).toHaveText('renewing');
    await expect(page.getByTestId('dash-status')).toHaveText('signed in', { timeout: 15_000 });
    const renewal = journal(page, 'refresh_token', 'ok');
    await expect(renewal).toHaveCount(1);
    expect(Number(await renewal.getAttribute('data-took-ms'))).toBeGreaterThanOrEqual(3000);
  } finally {
    await switchOff(page, 'slow-provider');
  }
  await expect(journal(page, 'fault')).toHaveCount(3); // on, expire, off
});

test('the provider down: transient failures, retried with backoff, and the session survives in every tab', async ({
  page,
}) => {
  await openDashboard(page, FAULT_USERS.victor);
  const form = await page.context().newPage();
  try {
    await inject(page, 'provider-down');
    await inject(page, 'expire-access-token');
    await expect(journal(page, 'refresh_token', 'transient').first()).toBeVisible();
    await expect(page.getByTestId('renewal-trouble')).toBeVisible();
    // Backoff: the first retries wait the server's retry_after (2 s), the fourth at least 4 s.
    const retries = logEntries(page, 'silentRenewError', /transient \(refresh token\).*retry in/);
    await expect.poll(() => retries.count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(4);
    const delays = (await retries.allTextContents()).map((text) => Number(/retry in ([\d.]+) s/.exec(text)![1]));
    expect(Math.min(...delays)).toBe(2);
    expect(Math.max(...delays)).toBeGreaterThanOrEqual(4);
    await expect(page.getByTestId('dash-status')).not.toHaveText('sign-in required');
    // A second tab fails too, and says so.
    await form.goto('/form');
    await waitForHydration(form);
    await expect(form.getByTestId('renewal-trouble')).toBeVisible();
  } finally {
    await switchOff(page, 'provider-down');
  }
  // The next retry goes through, in one tab; the other adopts it, and neither says any longer
  // that renewal is failing.
  await expect(journal(page, 'refresh_token', 'ok')).toHaveCount(1, { timeout: 20_000 });
  for (const tab of [page, form]) {
    await expect(tab.getByTestId('renewal-trouble')).toHaveCount(0);
  }
  await expect(page.getByTestId('dash-status')).toHaveText('signed in');
});

test('a renewal request never answered (a dead connection) is given up after a minute, and the retry renews', async ({
  page,
}) => {
  await page.clock.install();
  await openDashboard(page, FAULT_USERS.bea);
  // The first request is sent and nothing ever comes back (the route is never let go: removing
  // it would let the request through). Every tab's renewal waits behind it, for the lock it
  // holds: the app must let go. The retry goes through.
  let held = false;
  await page.route('**/auth/refresh', async (route) => {
    if (held) {
      await route.continue();
    }
    held = true;
  });
  await inject(page, 'expire-access-token');
  await expect(page.getByTestId('dash-status')).toHaveText('renewing');
  await expect.poll(() => held).toBe(true);
  await page.clock.fastForward('01:01');
  await expect(logEntries(page, 'silentRenewError', /transient \(refresh token\): the server did not answer in time/)).toHaveCount(1);
  await expect(journal(page, 'refresh_token', 'ok')).toHaveCount(1);
  await expect(page.getByTestId('dash-status')).toHaveText('signed in');
});

test('a lost token response: the retry presents the retired token, and reuse detection ends the session', async ({
  page,
  request,
}) => {
  await openDashboard(page, FAULT_USERS.wendy);
  await inject(page, 'lose-next-response');
  await inject(page, 'expire-access-token');

  await expect(journal(page, 'refresh_token', 'transient')).toContainText('the token response was lost');
  await expect(page.getByTestId('session-ended')).toBeVisible({ timeout: 20_000 });
  await expect(page.getByTestId('timeline-ended')).toHaveCount(1);
  // The provider saw the retired token come back (no grace window) and revoked the family.
  const [family] = await providerFamilies(request, FAULT_USERS.wendy.sub, PROVIDER);
  expect(family.revoked_reason).toBe('reuse');
  await expect(faultButton(page, 'expire-access-token')).toBeDisabled();
});

test('a replayed refresh token: the family is revoked, the provider session ends, so does this one', async ({
  page,
  request,
}) => {
  await openDashboard(page, FAULT_USERS.xavier);
  // Reuse needs a retired token: one rotation first.
  await inject(page, 'expire-access-token');
  await expect(journal(page, 'refresh_token', 'ok')).toHaveCount(1);

  // From here only the back channel can tell the app: no renewal reaches the server, and
  // check_session cannot ask the provider.
  await page.route('**/auth/refresh', () => {});
  await page.route('**/check-session/state', () => {});
  await inject(page, 'refresh-token-reuse');
  await expect(page.getByTestId('fault-result')).toContainText('invalid_grant');
  // The provider tells the app through the back channel; the app tells the tab.
  await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
  await expect(logEntries(page, 'userSessionChanged', /the server ended the session/)).toHaveCount(1);
  const [family] = await providerFamilies(request, FAULT_USERS.xavier.sub, PROVIDER);
  expect(family.revoked_reason).toBe('reuse');
  // The server's session ended too, not only this tab's view of it.
  await expect.poll(async () => (await (await page.request.get('/auth/session')).json()).authenticated).toBe(false);
});

test('the provider session ended, no back-channel: check_session notices and the tab is told', async ({ page }) => {
  await openDashboard(page, FAULT_USERS.yara);
  await expect(page.getByTestId('check-session-state')).toHaveText('watching');
  await inject(page, 'end-provider-session');

  await expect(logEntries(page, 'userSessionChanged', /check_session: changed/).first()).toBeVisible();
  await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
  await expect(page.getByTestId('check-session-state')).toHaveText('stopped');
  // The re-check with prompt=none was refused by the provider (login_required): a logout
  // (Session Management 1.0 §5), so the server ended its session too, and revoked the family.
  await expect(logEntries(page, 'userSessionChanged', /signed out at the provider/)).toHaveCount(1);
  await expect.poll(async () => (await (await page.request.get('/auth/session')).json()).authenticated).toBe(false);
});

test('a back-channel logout: the server ends the session and the push channel tells the tab', async ({ page }) => {
  await openDashboard(page, FAULT_USERS.zoe);
  await expect(page.getByTestId('push-channel-state')).toHaveText('watching');
  await inject(page, 'backchannel-logout');

  await expect(page.getByTestId('fault-result')).toHaveText('a logout token was sent; this app answered 200');
  await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
  await expect(logEntries(page, 'userSessionChanged', /the server ended the session/)).toHaveCount(1);
  await expect(page.getByTestId('push-channel-state')).toHaveText('stopped');
  const session = await page.request.get('/auth/session');
  expect((await session.json()).authenticated).toBe(false);
});

test('a tour of the app, with screenshots: home, the provider, the form, the dashboard mid-renewal, signed out', async ({
  page,
  request,
}) => {
  const shot = (name: string) => page.screenshot({ path: `${SCREENSHOTS}/${name}.png` });
  await page.goto('/');
  await waitForHydration(page);
  await expect(page.getByTestId('session-badge')).toHaveText('Signed out');
  await shot('home');

  await page.goto('/form');
  await expect(page).toHaveURL(new RegExp(`^${PROVIDER}/authorize\\?`));
  await page.getByLabel('Username').fill(FAULT_USERS.ada.username);
  await shot('provider-sign-in');
  await signInAtProvider(page, FAULT_USERS.ada.username, FAULT_USERS.ada.password, PROVIDER);
  await expect(page).toHaveURL('/form');
  await waitForHydration(page);
  await page.locator('#title').fill('Checkout errors after the deploy');
  const summary = page.locator('#summary');
  await summary.fill('Checkout errors after the 14:02 deploy; rolling back.');
  await expect(page.getByTestId('draft-status')).toContainText('Draft saved');
  await shot('form');

  await page.getByRole('link', { name: 'Session dashboard' }).click();
  await expect(page).toHaveURL('/session');
  try {
    await inject(page, 'expire-access-token');
    await expect(journal(page, 'refresh_token', 'ok')).toHaveCount(1);
    await inject(page, 'slow-provider');
    await inject(page, 'expire-access-token');
    await expect(page.getByTestId('dash-status')).toHaveText('renewing');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-mid-renewal.png`, fullPage: true });
    await expect(page.getByTestId('dash-status')).toHaveText('signed in', { timeout: 15_000 });
  } finally {
    await switchOff(page, 'slow-provider');
  }

  await page.getByRole('link', { name: 'Long form' }).click();
  await expect(summary).toHaveValue('Checkout errors after the 14:02 deploy; rolling back.');
  const sid = (await (await page.request.get('/auth/session')).json()).sid;
  const logout = await request.post(`${PROVIDER}/admin/logout-token`, {
    data: { client_id: 'demo-app', sub: FAULT_USERS.ada.sub, sid },
  });
  expect((await logout.json()).status).toBe(200);
  await expect(page.getByTestId('session-ended')).toBeVisible();
  await expect(summary).toHaveValue('Checkout errors after the 14:02 deploy; rolling back.');
  await expect(page.getByTestId('token-countdown'), 'no countdown for a session that ended').toHaveText('–:––');
  await shot('signed-out');
});
