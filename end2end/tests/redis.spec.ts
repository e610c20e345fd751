import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { JWT_PATTERN, logEntries, ownRenewals, signIn } from './helpers';
import { USERS } from './users';

/** The provider embedded in the Redis app (scripts/e2e.sh). */
const PROVIDER = 'http://localhost:4100';
const redis = (command: 'start' | 'stop') =>
  execFileSync(path.resolve(__dirname, '../../scripts/e2e-redis.sh'), [command], { stdio: 'inherit' });

test.describe('sessions in Redis', () => {
  test('Redis taken away while the user types: said plainly, nothing lost, and it all comes back', async ({
    page,
  }) => {
    await signIn(page, '/form', USERS.carol, PROVIDER);
    const details = page.getByLabel('What happened, in detail');
    await details.click();
    await page.keyboard.type('The fire alarm went off at noon. ', { delay: 20 });
    await expect(ownRenewals(page).first()).toBeVisible({ timeout: 15_000 });
    // Where the text is in the page (the browser's scroll anchoring would hide a shift on screen).
    const top = () => details.evaluate((element) => element.getBoundingClientRect().top + window.scrollY);
    const before = await top();

    redis('stop');
    try {
      await page.keyboard.type('Everyone left the building. ', { delay: 20 });
      // The next renewal fails for now, and the page says so in place.
      const trouble = page.getByTestId('renewal-trouble');
      await expect(trouble).toBeVisible({ timeout: 15_000 });
      await expect(trouble).toContainText('the server is unavailable');
      await expect(trouble).toContainText('Your draft is saved on this device.');
      expect(await top(), 'the notice does not move the text being typed').toBe(before);
      const direct = await page.request.get('/auth/session');
      expect(direct.status()).toBe(503);
      expect(direct.headers()['retry-after']).toBe('5');
      await page.keyboard.type('Nobody was hurt.', { delay: 20 });
      const text = 'The fire alarm went off at noon. Everyone left the building. Nobody was hurt.';
      await expect(details).toHaveValue(text);
      // The draft catches up with the typing (the autosave waits for a pause).
      const stored = () => page.evaluate(() => JSON.stringify({ ...localStorage }));
      await expect.poll(stored).toContain('Nobody was hurt.');
      expect(await stored()).not.toMatch(JWT_PATTERN);
    } finally {
      redis('start');
    }

    // Back: the next retry renews, the notice goes, and the user was never signed out.
    const renewed = await ownRenewals(page).count();
    await expect(ownRenewals(page)).toHaveCount(renewed + 1, { timeout: 20_000 });
    await expect(page.getByTestId('renewal-trouble')).toHaveCount(0);
    await expect(logEntries(page, 'userSignedOut')).toHaveCount(0);
    await expect(details).toBeFocused();
    await expect(details).toHaveValue(/Nobody was hurt\.$/);
  });
});
