import { expect } from '@playwright/test';
import { logEntries, ownRenewals, providerFamilies, signIn, signInAtProvider, test, waitForHydration } from './helpers';
import { USERS } from './users';

/**
 * The journeys whose outcome depends on the provider, against panva's oidc-provider (project
 * `interop`: the app on :3500, end2end/interop/provider.mjs on :4500). The journeys that end
 * the same way at both providers are the ones tagged `@interop` in the other specs, run again
 * by this project. The app is the same build with other settings; what differs is the provider:
 *
 * - reuse detection revokes the grant (the family) and nothing else: the provider session lives
 *   on, so the app's fallback chain renews through the hidden iframe, without the user;
 * - it has no check_session iframe (Session Management was removed in oidc-provider 7), so a
 *   provider session ended without back-channel logout goes unnoticed, and offline refresh
 *   tokens keep renewing: only back-channel logout (or the refresh token's end) signs out.
 */
test.describe('interop with panva/oidc-provider', () => {
  test('it signs with RS256 where the embedded provider signs ES256, so the journeys here prove the other', async ({
    request,
    providerUrl,
  }) => {
    const discovery = await (await request.get(`${providerUrl}/.well-known/openid-configuration`)).json();
    expect(discovery.id_token_signing_alg_values_supported).toEqual(['RS256']);
    const jwks = await (await request.get(discovery.jwks_uri)).json();
    expect(jwks.keys.map((key: { kty: string; alg: string }) => `${key.kty} ${key.alg}`)).toEqual(['RSA RS256']);
  });

  test('a reused refresh token revokes the family; the app renews through the iframe, the draft intact', async ({
    page,
    request,
    providerUrl,
  }) => {
    await signIn(page, '/form', USERS.erin, providerUrl);
    await page.getByLabel('Title').fill('Server room flooded');
    await page.getByLabel('What happened, in detail').fill('Water came in under the door at 09:10.');
    // The family has a retired token once the app has renewed.
    await expect(ownRenewals(page, 'refresh token').first()).toBeVisible({ timeout: 15_000 });

    // The provider presents a retired refresh token to its own token endpoint: reuse detection.
    const simulated = await request.post(`${providerUrl}/admin/users/${USERS.erin.sub}/simulate-reuse`);
    expect(simulated.status()).toBe(200);
    const { family: reused, token_endpoint: answer } = await simulated.json();
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
    const [revoked] = await providerFamilies(request, USERS.erin.sub, providerUrl);
    expect(revoked).toMatchObject({ id: reused, active: false, revoked_reason: 'reuse' });

    // The app's next renewal: its refresh token was revoked with the family; the provider
    // session was not, so the hidden iframe renews, and brings a refresh token of a new family.
    await expect(logEntries(page, 'silentRenewError', /refresh token refused \(invalid_grant\); trying the iframe/)).toHaveCount(1, {
      timeout: 15_000,
    });
    await expect(ownRenewals(page, 'iframe')).toHaveCount(1, { timeout: 15_000 });
    await expect(ownRenewals(page, 'refresh token')).toHaveCount(2, { timeout: 15_000 });
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
    await expect(page.getByLabel('Title')).toHaveValue('Server room flooded');
    await expect(page.getByLabel('What happened, in detail')).toHaveValue('Water came in under the door at 09:10.');
    const families = await providerFamilies(request, USERS.erin.sub, providerUrl);
    expect(families[0].active).toBe(true);
    expect(families[1]).toMatchObject({ id: reused, revoked_reason: 'reuse' });
  });

  test('after sign-out, the old refresh token no longer works at the provider', async ({ page, request, providerUrl }) => {
    await signIn(page, '/form', USERS.heidi, providerUrl);
    await expect(ownRenewals(page, 'refresh token').first()).toBeVisible({ timeout: 15_000 });

    await page.getByRole('button', { name: 'Sign out' }).click();
    // Revocation, then RP-initiated logout at the provider, and back to the app signed out.
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');
    await expect(page).toHaveURL(/^http:\/\/localhost:3500\/(\?.*)?$/);

    // The newest refresh token the provider issued to heidi, presented again: refused.
    const presented = await request.post(`${providerUrl}/admin/users/${USERS.heidi.sub}/present-refresh-token`);
    expect(presented.status()).toBe(200);
    const { token_endpoint: answer } = await presented.json();
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
    const [family] = await providerFamilies(request, USERS.heidi.sub, providerUrl);
    expect(family).toMatchObject({ active: false, revoked_reason: 'revocation' });
    // The provider session ended too: signing in asks for the password again.
    await page.goto('/form');
    await signInAtProvider(page, USERS.heidi.username, USERS.heidi.password, providerUrl);
    await expect(page).toHaveURL('/form');
  });

  test('a provider session ended with back-channel logout signs out every tab; sign-in brings the draft back', async ({
    context,
    request,
    providerUrl,
  }) => {
    const first = await context.newPage();
    await signIn(first, '/form', USERS.ivan, providerUrl);
    await first.getByLabel('Title').fill('Left in a hurry');
    const second = await context.newPage();
    await second.goto('/form');
    await waitForHydration(second);

    // The provider ends ivan's session as if he signed out elsewhere; its logout token reaches
    // the app, which tells every tab.
    const ended = await request.post(`${providerUrl}/admin/users/${USERS.ivan.sub}/end-session`);
    expect(await ended.json()).toEqual({ ended: 1, backchannel_logout_sent: 1 });
    // "Signed out elsewhere" is what the server's push channel says (this provider has no
    // check_session); a renewal refused later would say "Your session has ended".
    for (const tab of [first, second]) {
      await expect(tab.getByTestId('session-ended')).toContainText('You were signed out elsewhere.');
    }
    await first.getByRole('button', { name: 'Submit' }).click();
    await expect(first.getByTestId('form-result')).toContainText('your session has ended');
    await expect(first.getByLabel('Title')).toHaveValue('Left in a hurry');

    await second.close();
    await first.getByTestId('session-ended').getByRole('link', { name: 'Sign in again' }).click();
    await signInAtProvider(first, USERS.ivan.username, USERS.ivan.password, providerUrl);
    await expect(first).toHaveURL('/form');
    await waitForHydration(first);
    await expect(first.getByLabel('Title')).toHaveValue('Left in a hurry');
    await expect(first.getByTestId('session-ended')).toHaveCount(0);
  });

  test('without check_session, a provider session ended silently leaves the offline session renewing', async ({
    page,
    request,
    providerUrl,
  }) => {
    await signIn(page, '/form', USERS.pete, providerUrl);
    // Discovery has no check_session_iframe and the code response no session_state: the app
    // does not monitor, and says so in the session it describes.
    const session = await (await page.request.get('/auth/session')).json();
    expect(session.check_session ?? null).toBeNull();
    expect(session.session_state ?? null).toBeNull();
    await expect(page.locator('iframe')).toHaveCount(0);

    const ended = await request.post(`${providerUrl}/admin/users/${USERS.pete.sub}/end-session?backchannel=false`);
    expect(await ended.json()).toEqual({ ended: 1, backchannel_logout_sent: 0 });
    // The refresh token is offline (it does not die with the provider session): renewal goes on.
    const before = await ownRenewals(page, 'refresh token').count();
    await expect(ownRenewals(page, 'refresh token')).toHaveCount(before + 1, { timeout: 15_000 });
    await expect(page.getByTestId('session-ended')).toHaveCount(0);
    await expect(logEntries(page, 'userSessionChanged')).toHaveCount(0);
    const [family] = await providerFamilies(request, USERS.pete.sub, providerUrl);
    expect(family.active).toBe(true);
  });
});
