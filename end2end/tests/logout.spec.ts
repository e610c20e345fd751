import { expect, type Route } from '@playwright/test';
import { logEntries, PROVIDER, providerFamilies, signIn, signInAtProvider, test, waitForHydration } from './helpers';
import { USERS } from './users';

/** Logout reaches everywhere: other tabs, the provider, and back from the provider. */
test.describe('logout everywhere', () => {
  test('signing out in one tab signs out the other at once and revokes the refresh token', { tag: '@interop' }, async ({
    context,
    request,
    providerUrl,
  }) => {
    const first = await context.newPage();
    await signIn(first, '/form', USERS.olga, providerUrl);
    const second = await context.newPage();
    await second.goto('/profile');
    await waitForHydration(second);
    await expect(second.getByTestId('claims')).toContainText('Olga Signout');

    await first.getByRole('button', { name: 'Sign out' }).click();
    // The other tab leaves for the signed-out home page, and shows nothing of olga. Only the
    // first tab's message takes it there: a session that ends any other way (a refused renewal,
    // an expired token) keeps the tab where it is, with a notice.
    await expect(second).toHaveURL('/');
    await expect(second.getByTestId('session-badge')).toHaveText('Signed out');
    await expect(second.locator('main')).not.toContainText('Olga');
    await expect(first.getByTestId('session-badge')).toHaveText('Signed out');

    // At the provider: the refresh token family is revoked, and the provider session is gone.
    const [family] = await providerFamilies(request, USERS.olga.sub, providerUrl);
    expect(family.active).toBe(false);
    expect(family.revoked_reason).toBe('revocation');
    await first.goto('/form');
    await signInAtProvider(first, USERS.olga.username, USERS.olga.password, providerUrl);
    await expect(first).toHaveURL('/form');
  });

  test('a provider session ended elsewhere is noticed through check_session', async ({ page, request }) => {
    await signIn(page, '/form', USERS.pete);
    await page.getByLabel('Title').fill('Pete was here');
    // Let check_session see the session unchanged first: before that, a `changed` is not believed.
    await expect(page.getByTestId('session-panel')).toHaveAttribute('data-check-session', 'watching');
    const ended = await request.post(`${PROVIDER}/admin/users/${USERS.pete.sub}/end-session?backchannel=false`);
    expect(ended.status()).toBe(200);

    const notice = page.getByTestId('session-ended');
    await expect(notice).toContainText('You were signed out elsewhere.');
    await expect(logEntries(page, 'userSessionChanged', /check_session: changed/)).toHaveCount(1);
    await expect(page.getByLabel('Title')).toHaveValue('Pete was here');
    // Not only this tab's view: the server's session ended too, so a reload does not sign Pete
    // back in with the refresh token it held, but sends him to sign in (the draft waits for him).
    await page.reload();
    await expect(page).toHaveURL(new RegExp(`^${PROVIDER}/authorize\\?`));
  });

  test('a provider session renewed for the same user does not sign out; a re-check that fails pauses the next', async ({
    page,
    context,
  }) => {
    await signIn(page, '/form', USERS.quinn);
    await expect(page.getByTestId('session-panel')).toHaveAttribute('data-check-session', 'watching');
    // The first re-check cannot reach the server (its iframe's request fails).
    await page.route('**/auth/silent-renew**', (route) => route.abort());
    // Quinn signs in at the provider again, through another client: the same provider session,
    // re-authenticated, with a new browser state, so check_session answers `changed`.
    const elsewhere = await context.newPage();
    const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    const spa = encodeURIComponent('http://localhost:3000/spa/callback');
    await elsewhere.goto(
      `${PROVIDER}/authorize?response_type=code&client_id=demo-spa&redirect_uri=${spa}&scope=openid` +
        `&code_challenge=${challenge}&code_challenge_method=S256&state=x&prompt=login`,
    );
    await signInAtProvider(elsewhere, USERS.quinn.username, USERS.quinn.password);
    await elsewhere.close();

    const rechecks = logEntries(page, 'userSessionChanged', /re-checking with prompt=none/);
    const failed = logEntries(page, 'userSessionChanged', /re-check failed for now; check_session asks again in 10 s/);
    await expect(failed).toHaveCount(1, { timeout: 45_000 });
    const panel = page.getByTestId('session-panel');
    await expect(panel).toHaveAttribute('data-check-session', 'paused');
    await page.unroute('**/auth/silent-renew**');
    // check_session, asked every 5 s, would answer `changed` again at once: no re-check during
    // the pause (the only wait of its kind here: what must not happen has no event to wait on).
    await page.waitForTimeout(7_000);
    await expect(rechecks).toHaveCount(1);
    await expect(logEntries(page, 'userSessionChanged', /same user: carrying on/)).toHaveCount(1, { timeout: 15_000 });
    await expect(rechecks).toHaveCount(2);
    await expect(panel).toHaveAttribute('data-check-session', 'watching');
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
  });

  test('a provider session that needs the user again is not called a sign-out, and the draft waits', async ({
    page,
    context,
    request,
  }) => {
    // Vera has updated terms to accept in every new provider session.
    const acceptTerms = (at: typeof page) => at.getByRole('button', { name: 'Accept and continue' }).click();
    await page.goto('/form');
    await signInAtProvider(page, USERS.vera.username, USERS.vera.password);
    await acceptTerms(page);
    await expect(page).toHaveURL('/form');
    await waitForHydration(page);
    await page.getByLabel('Title').fill('Vera was here');
    await expect(page.getByTestId('session-panel')).toHaveAttribute('data-check-session', 'watching');

    // Her provider session ends and she signs in there again through another app, leaving the
    // terms unanswered. Until then, this tab's check_session iframe is kept from asking the
    // provider (a session with no one in it would rightly be a sign-out).
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/check-session/state', async (route) => {
      await released;
      await route.continue();
    });
    const ended = await request.post(`${PROVIDER}/admin/users/${USERS.vera.sub}/end-session?backchannel=false`);
    expect(ended.status()).toBe(200);
    const elsewhere = await context.newPage();
    const spa = encodeURIComponent('http://localhost:3000/spa/callback');
    await elsewhere.goto(
      `${PROVIDER}/authorize?response_type=code&client_id=demo-spa&redirect_uri=${spa}&scope=openid` +
        `&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=x`,
    );
    await signInAtProvider(elsewhere, USERS.vera.username, USERS.vera.password);
    await expect(elsewhere.getByRole('button', { name: 'Accept and continue' })).toBeVisible();
    await elsewhere.close();
    release();

    // check_session: changed; prompt=none: interaction_required. The provider knows Vera and
    // needs her: not "signed out elsewhere", and the server keeps the session.
    await expect(page.getByTestId('session-ended')).toContainText('The provider needs you to sign in again.');
    await expect(logEntries(page, 'userSessionChanged', /needs the user first \(interaction_required\)/)).toHaveCount(1);
    const session = await (await page.request.get('/auth/session')).json();
    expect(session.authenticated).toBe(true);
    await expect(page.getByLabel('Title')).toHaveValue('Vera was here');

    // Signing in again is accepting the terms, and she is back at her draft.
    await page.getByRole('link', { name: 'Sign in again' }).click();
    await acceptTerms(page);
    await expect(page).toHaveURL('/form');
    await expect(page.getByLabel('Title')).toHaveValue('Vera was here');
  });

  test('a back-channel logout signs out every tab at once, and the session is refused after it', { tag: '@interop' }, async ({
    context,
    request,
    providerUrl,
  }) => {
    const first = await context.newPage();
    await signIn(first, '/form', USERS.rosa, providerUrl);
    const second = await context.newPage();
    await second.goto('/form');
    await waitForHydration(second);

    const answer = await request.post(`${providerUrl}/admin/logout-token`, {
      data: { client_id: 'demo-app', sub: USERS.rosa.sub },
    });
    expect((await answer.json()).status).toBe(200);
    // "Signed out elsewhere" is what the server's push channel says (this provider session lives
    // on, so check_session has nothing to notice); a renewal refused later would say "Your
    // session has ended".
    for (const tab of [first, second]) {
      await expect(tab.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
      await expect(tab.getByTestId('session-badge'), 'the header no longer names the user').toHaveText('Signed out');
    }
    await first.getByLabel('Title').fill('Too late');
    await first.getByRole('button', { name: 'Submit' }).click();
    await expect(first.getByTestId('form-result')).toContainText('your session has ended');
    await expect(first.getByLabel('Title')).toHaveValue('Too late');
  });

  test('a renewal on its way when the session ends elsewhere does not bring the session back', async ({
    page,
    request,
  }) => {
    await signIn(page, '/form', USERS.tom);
    // The next renewal (ten-second tokens: within seconds) is held on its way.
    const held = new Promise<Route>((resolve) => page.route('**/auth/refresh', (route) => resolve(route)));
    const renewal = await held;
    const answer = await request.post(`${PROVIDER}/admin/logout-token`, {
      data: { client_id: 'demo-app', sub: USERS.tom.sub },
    });
    expect((await answer.json()).status).toBe(200);
    await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');

    // Then the renewal fails as if the network dropped: a transient outcome, after the end.
    const failed = page.waitForEvent('requestfailed', (request) => request.url().endsWith('/auth/refresh'));
    const retries: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/auth/refresh')) retries.push(request.url());
    });
    await renewal.abort('internetdisconnected');
    await failed;
    // A tab that took the failure for its own would retry within a second or two.
    await page.waitForTimeout(3_000);
    expect(retries, 'the stopped tab tries no more renewals').toEqual([]);
    await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');
    await expect(logEntries(page, 'silentRenewError', /transient/)).toHaveCount(0);
  });

  test('a push channel the server refused is opened again, and brings the next logout at once', async ({
    page,
    request,
  }) => {
    // The first stream is answered 503 (the store was down a moment): the browser does not
    // reconnect by itself after that.
    let refused = 0;
    await page.route(
      '**/auth/events',
      (route) => {
        refused += 1;
        return route.fulfill({ status: 503, body: '' });
      },
      { times: 1 },
    );
    await signIn(page, '/form', USERS.una);
    await expect(page.getByTestId('session-panel')).toHaveAttribute('data-push-channel', 'watching', {
      timeout: 10_000,
    });
    expect(refused).toBe(1);
    const answer = await request.post(`${PROVIDER}/admin/logout-token`, {
      data: { client_id: 'demo-app', sub: USERS.una.sub },
    });
    expect((await answer.json()).status).toBe(200);
    // From the push channel: a renewal refused later would say "Your session has ended".
    await expect(page.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
  });

  test("another user signing in on this browser tells the first user's tab at once", async ({ context, request }) => {
    const first = await context.newPage();
    await signIn(first, '/form', USERS.walt);
    await first.getByLabel('Title').fill('Handed over');
    // Only the push channel can tell this tab: its renewals (which read the session first) and
    // check_session are held.
    await first.route('**/api/get_session*', () => {});
    await first.route('**/auth/refresh', () => {});
    await first.route('**/check-session/state', () => {});

    // The provider forgets walt without telling the app, and bob signs in in another tab.
    const ended = await request.post(`${PROVIDER}/admin/users/${USERS.walt.sub}/end-session?backchannel=false`);
    expect(ended.status()).toBe(200);
    const second = await context.newPage();
    await second.goto('/auth/login?return_to=%2Fprofile');
    await signInAtProvider(second, USERS.bob.username, USERS.bob.password);
    await expect(second).toHaveURL('/profile');
    await expect(second.getByTestId('claims')).toContainText('Bob the Builder');

    await expect(first.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
    await expect(logEntries(first, 'userSessionChanged', /the server ended the session/)).toHaveCount(1);
    await expect(first.getByTestId('session-badge')).toHaveText('Signed out');
    await expect(first.locator('main')).not.toContainText('Bob');
    await expect(first.getByLabel('Title')).toHaveValue('Handed over');
  });
});
