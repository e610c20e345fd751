import { expect, type Page } from '@playwright/test';
import { recordConsoleErrors, signIn, test } from './helpers';
import { USERS } from './users';

/** The boxes that must not move while values tick: the three cards, the timeline, the countdown. */
async function boxes(page: Page) {
  const locators = [
    ...(await page.locator('.dashboard > .card').all()),
    page.getByTestId('renewal-timeline'),
    page.getByTestId('token-countdown'),
  ];
  return Promise.all(locators.map((locator) => locator.boundingBox()));
}

function seconds(page: Page): Promise<number> {
  return page
    .getByTestId('token-countdown')
    .getAttribute('data-seconds')
    .then((text) => Number(text ?? NaN));
}

test('the session dashboard shows live data: the countdown ticks, a renewal lands on the timeline, nothing moves', async ({
  page,
}) => {
  const errors = recordConsoleErrors(page);
  await signIn(page, '/session', USERS.sam);

  // What the server knows of the session: the sign-in, a family not rotated yet, its end.
  await expect(page.getByTestId('journal-entry').first()).toHaveAttribute('data-step', 'interactive');
  await expect(page.getByTestId('rotations')).toHaveText('0');
  // end2end/provider.toml: refresh tokens idle out after eight hours, sooner than the family's end.
  await expect(page.getByTestId('family-ends')).toHaveText(/^\d\d:\d\d:\d\d UTC \(in (7 h 59|8 h 00) min\)$/);
  await expect(page.getByTestId('check-session-state')).toHaveText('watching');
  await expect(page.getByTestId('push-channel-state')).toHaveText('watching');
  await expect(page.getByTestId('fault-panel'), 'development: the embedded provider runs').toBeVisible();

  // The countdown ticks down (ten-second tokens, renewed three to four seconds before expiry).
  await expect.poll(() => seconds(page)).toBeGreaterThan(0);
  const before = await boxes(page);
  const first = await seconds(page);
  await expect.poll(() => seconds(page)).toBeLessThan(first);

  // A renewal: a rotation on the server's journal, a filled dot on the refresh token lane, and
  // the countdown back up to a fresh token's lifetime.
  await expect(page.locator('[data-testid=journal-entry][data-step=refresh_token][data-outcome=ok]').first()).toBeVisible({
    timeout: 20_000,
  });
  await expect.poll(async () => Number(await page.getByTestId('rotations').textContent())).toBeGreaterThanOrEqual(1);
  await expect.poll(async () => Number(await page.getByTestId('dash-renewals').textContent())).toBeGreaterThanOrEqual(1);
  const took = await page
    .locator('[data-testid=journal-entry][data-step=refresh_token]')
    .first()
    .getAttribute('data-took-ms');
  expect(took).toMatch(/^\d+$/);
  await expect.poll(() => seconds(page)).toBeGreaterThanOrEqual(7);
  await expect.poll(() => page.locator('svg.timeline circle.mark.ok').count()).toBeGreaterThanOrEqual(2);

  // Values ticked and changed; nothing on the page moved.
  expect(await boxes(page)).toEqual(before);
  expect(errors).toEqual([]);
});

test('the form page carries a compact countdown and a way to the dashboard', async ({ page }) => {
  await signIn(page, '/form', USERS.sam);
  const panel = page.getByTestId('session-panel');
  await expect(panel.getByTestId('token-countdown')).toHaveAttribute('data-seconds', /^\d+$/);
  await panel.getByRole('link', { name: 'Session dashboard' }).click();
  await expect(page).toHaveURL('/session');
  await expect(page.getByTestId('renewal-timeline')).toBeVisible();
});
