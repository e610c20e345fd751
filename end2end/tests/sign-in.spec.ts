import { expect } from '@playwright/test';
import { JWT_PATTERN, recordConsoleErrors, signInAtProvider, test, waitForHydration } from './helpers';

// Tagged @interop: the `interop` project runs these again against panva's oidc-provider.
test.describe('sign-in through the server (backend-for-frontend)', () => {
  test('a signed-out visit to a protected page goes to sign-in and lands back on it', { tag: '@interop' }, async ({
    page,
    providerUrl,
  }) => {
    const errors = recordConsoleErrors(page);
    await page.goto('/profile');
    await signInAtProvider(page, 'alice', 'wonderland', providerUrl);

    await expect(page).toHaveURL('/profile');
    const claims = page.getByTestId('claims');
    await expect(claims.getByRole('row', { name: /^sub/ })).toContainText('248289761001');
    await expect(claims.getByRole('row', { name: /^name/ })).toContainText('Alice Liddell');
    await expect(claims.getByRole('row', { name: /^iss/ })).toContainText(providerUrl);
    await expect(claims.getByRole('row', { name: /^aud/ })).toContainText('demo-app');
    await expect(page.getByTestId('session-badge')).toHaveText('Signed in as Alice Liddell');
    await waitForHydration(page);
    expect(errors).toEqual([]);
  });

  test('a reload keeps the session', { tag: '@interop' }, async ({ page, providerUrl }) => {
    await page.goto('/profile');
    await signInAtProvider(page, 'alice', 'wonderland', providerUrl);
    await expect(page).toHaveURL('/profile');
    // From here on, the page never goes to the provider: the session is the app's own.
    const toProvider: string[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame() && request.url().startsWith(providerUrl)) {
        toProvider.push(request.url());
      }
    });

    await page.reload();
    await expect(page).toHaveURL('/profile');
    await expect(page.getByTestId('claims')).toContainText('Alice Liddell');

    await page.goto('/');
    const status = page.getByTestId('session-status');
    await expect(status).toHaveAttribute('data-authenticated', 'true');
    await expect(status.getByTestId('subject')).toHaveText('248289761001');
    await expect(status.getByTestId('access-token-expiry')).toHaveText(/^\d\d:\d\d:\d\d UTC$/);
    expect(toProvider).toEqual([]);
  });

  test('no token is ever within reach of the page', { tag: '@interop' }, async ({ page, context, providerUrl, baseURL }) => {
    await page.goto('/profile');
    await signInAtProvider(page, 'alice', 'wonderland', providerUrl);
    await expect(page).toHaveURL('/profile');
    await waitForHydration(page);

    const seen = await page.evaluate(() => ({
      cookie: document.cookie,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      html: document.documentElement.outerHTML,
    }));
    const served = await (await page.request.get('/profile')).text();
    for (const [where, text] of Object.entries({ ...seen, served })) {
      expect(text, `no JWT in ${where}`).not.toMatch(JWT_PATTERN);
    }
    expect(seen.local).toBe('{}');
    expect(seen.session).toBe('{}');

    // The session cookie exists but is HttpOnly: invisible to document.cookie.
    const appCookies = await context.cookies(baseURL);
    const sessionCookie = appCookies.find((c) => c.name === 'session');
    expect(sessionCookie?.httpOnly).toBe(true);
    expect(sessionCookie?.sameSite).toBe('Lax');
    expect(seen.cookie).not.toContain('session=');

    const info = await (await page.request.get('/auth/session')).json();
    expect(info).toMatchObject({ authenticated: true, subject: '248289761001', display_name: 'Alice Liddell' });
    expect(JSON.stringify(info)).not.toMatch(JWT_PATTERN);
  });

  test('the client-side link to a protected page also goes through sign-in', { tag: '@interop' }, async ({
    page,
    providerUrl,
  }) => {
    await page.goto('/');
    await waitForHydration(page);
    await expect(page.getByTestId('session-status')).toHaveAttribute('data-authenticated', 'false');
    await page.getByRole('link', { name: 'Long form' }).click();
    await signInAtProvider(page, 'alice', 'wonderland', providerUrl);
    await expect(page).toHaveURL('/form');
    await expect(page.getByLabel('What happened, in detail')).toBeVisible();
  });

  test('signing out ends the session', { tag: '@interop' }, async ({ page, providerUrl }) => {
    await page.goto('/');
    await page.getByRole('link', { name: 'Sign in' }).click();
    await signInAtProvider(page, 'alice', 'wonderland', providerUrl);
    await expect(page).toHaveURL('/');
    await expect(page.getByTestId('session-status')).toHaveAttribute('data-authenticated', 'true');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByTestId('session-status')).toHaveAttribute('data-authenticated', 'false');
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');
    expect(await (await page.request.get('/auth/session')).json()).toEqual({ authenticated: false });
    // Protected pages ask for sign-in again. (This signs out of the app only: the provider's
    // session lives on until RP-initiated logout ends it too.)
    const profile = await page.request.get('/profile', { maxRedirects: 0, headers: { Accept: 'text/html' } });
    expect(profile.status()).toBe(302);
    expect(profile.headers()['location']).toBe('/auth/login?return_to=%2Fprofile');
  });

  test('a wrong password keeps the user at the provider', { tag: '@interop' }, async ({ page, providerUrl }) => {
    await page.goto('/profile');
    await signInAtProvider(page, 'alice', 'not-her-password', providerUrl);
    await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
    // At the sign-in form's own address: `/login` here, `/authorize?interaction=…` at oidc-provider.
    await expect(page).toHaveURL(new RegExp(`^${providerUrl}/(login|authorize\\?interaction=)`));
  });
});

test.describe('the long form', () => {
  test('a signed-in user submits it through a server function', { tag: '@interop' }, async ({ page, providerUrl }) => {
    const errors = recordConsoleErrors(page);
    await page.goto('/form');
    await signInAtProvider(page, 'bob', 'builder', providerUrl);
    await expect(page).toHaveURL('/form');
    await waitForHydration(page);

    await page.getByLabel('Title').fill('Coffee machine');
    await page.getByLabel('Summary').fill('It broke.');
    await page.getByLabel('What happened, in detail').fill('x'.repeat(5000));
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect(page.getByTestId('form-result')).toHaveText('Received 5023 characters.');
    expect(errors).toEqual([]);
  });
});
