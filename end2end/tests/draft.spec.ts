import { expect, test, type Page } from '@playwright/test';
import { holdClock, signIn, signInAtProvider, waitForHydration } from './helpers';
import { USERS } from './users';

/**
 * Submits the form with the report held on its way to the server, until the returned function
 * lets it go: the user can type on meanwhile.
 */
async function submitHeld(page: Page): Promise<() => void> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const sent = new Promise<void>((resolve) =>
    page.route('**/api/submit_form', async (route) => {
      resolve();
      await held;
      await route.continue();
    }),
  );
  await page.getByRole('button', { name: 'Submit' }).click();
  await sent;
  return release;
}

test.describe("the long form's draft", () => {
  test('a reload mid-typing restores the draft', async ({ page }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.grace);
    // The page's timers stand still: the autosave's pause never ends while typing.
    await holdClock(page);
    await page.getByLabel('Title').fill('Lift stuck');
    const details = page.getByLabel('What happened, in detail');
    await details.click();
    await page.keyboard.type('Between floors 3 and 4, two people inside', { delay: 20 });
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).not.toContain('two people inside');
    // Leaving the page saves what is there: the clock stays held through the reload, so the
    // autosave's pause cannot end first and only the save on leaving (the page hidden, then
    // pagehide) can keep it.
    await page.reload();
    await page.clock.resume();
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('Lift stuck');
    await expect(details).toHaveValue('Between floors 3 and 4, two people inside');
    await expect(page.getByTestId('draft-status')).toHaveText('Your draft was restored.');
  });

  test("a link to another page mid-typing keeps the draft (the app's own navigation, no pagehide)", async ({
    page,
  }) => {
    await page.clock.install();
    await signIn(page, '/form', USERS.grace);
    // The page's timers stand still: the autosave's pause never ends while typing.
    await holdClock(page);
    const details = page.getByLabel('What happened, in detail');
    await details.click();
    await page.keyboard.type('Escalator stopped', { delay: 20 });
    const stored = () => page.evaluate(() => JSON.stringify({ ...localStorage }));
    expect(await stored()).not.toContain('Escalator stopped');
    // Within the autosave's pause: the form is unmounted while a save is waiting, and saves.
    await page.getByRole('link', { name: 'Session', exact: true }).click();
    await expect(page).toHaveURL('/session');
    expect(await stored()).toContain('Escalator stopped');
    await page.clock.resume();
    await page.getByRole('link', { name: 'Long form' }).click();
    await expect(details).toHaveValue('Escalator stopped');
    await expect(page.getByTestId('draft-status')).toHaveText('Your draft was restored.');
  });

  test('a browser whose storage is full says the draft is not saved, and saves it once there is room', async ({
    page,
  }) => {
    // The quota is used up, as far as this page can tell: every write throws.
    await page.addInitScript(() => {
      const setItem = Storage.prototype.setItem;
      Storage.prototype.setItem = function (key: string, value: string) {
        if ((window as unknown as { storageFull?: boolean }).storageFull !== false) {
          throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        }
        setItem.call(this, key, value);
      };
    });
    await signIn(page, '/form', USERS.grace);
    await page.getByLabel('Title').fill('Storage is full');
    await expect(page.getByTestId('draft-status')).toContainText('could not be saved');
    // Room again: the next keystroke saves what is there.
    await page.evaluate(() => ((window as unknown as { storageFull?: boolean }).storageFull = false));
    await page.getByLabel('Title').press('End');
    await page.keyboard.type('!');
    await expect(page.getByTestId('draft-status')).toContainText('Draft saved on this device');
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).toContain('Storage is full!');
  });

  test('a browser that refuses the page any storage still hydrates the form, and says the draft is not saved', async ({
    page,
  }) => {
    // Storage turned off, as a hardened browser does: reading `localStorage` itself throws.
    await page.addInitScript(() => {
      Object.defineProperty(window, 'localStorage', {
        configurable: true,
        get() {
          throw new DOMException('The operation is insecure.', 'SecurityError');
        },
      });
    });
    await signIn(page, '/form', USERS.grace);
    await page.getByLabel('Title').fill('No storage');
    await expect(page.getByTestId('draft-status')).toContainText('could not be saved');
    await page.getByRole('button', { name: 'Submit' }).click();
    await expect(page.getByTestId('form-result')).toHaveText('Received 10 characters.');
  });

  test('text typed before the page came alive is kept beside the restored draft', async ({ page }) => {
    await signIn(page, '/form', USERS.grace);
    await page.getByLabel('Title').fill('Lift');
    await expect(page.getByTestId('draft-status')).toContainText('Draft saved on this device');
    // The next load's wasm is held: the server's form takes keystrokes before the page is alive.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/pkg/*.wasm', async (route) => {
      await held;
      await route.continue();
    });
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.getByLabel('Title').pressSequentially('again');
    await page.getByLabel('Summary').pressSequentially('Two inside');
    await expect(page.locator('body[data-hydrated]')).toHaveCount(0);
    release();
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('Lift again');
    await expect(page.getByLabel('Summary')).toHaveValue('Two inside');
    // And the draft has both.
    const stored = () => page.evaluate(() => JSON.stringify({ ...localStorage }));
    await expect.poll(stored).toContain('Two inside');
    expect(await stored()).toContain('Lift again');
  });

  test('a saved report clears its draft; Enter in a line does not send it half written', async ({ page }) => {
    await signIn(page, '/form', USERS.grace);
    const title = page.getByLabel('Title');
    await title.fill('Door');
    // Sent now, it would be four characters, and the form emptied under the user's hands.
    await title.press('Enter');
    await title.pressSequentially(' sticks');
    const submit = page.getByRole('button', { name: 'Submit' });
    await submit.focus();
    await page.keyboard.press('Enter');
    await expect(page.getByTestId('form-result')).toHaveText('Received 11 characters.');
    await expect(submit, 'the button keeps the focus while it sends').toBeFocused();
    await expect(page.getByLabel('Title')).toHaveValue('');
    // Cleared by the save itself, not only emptied by a later autosave of the reset form.
    expect(await page.evaluate(() => Object.keys(localStorage).filter((key) => key.includes('draft')))).toEqual([]);
    await page.reload();
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('');
  });

  test('signing out asks whether to keep the draft, and another user never sees it', async ({ page, context }) => {
    await signIn(page, '/form', USERS.heidi);
    await page.getByLabel('Title').fill('Heidi’s report');
    const signOut = page.getByRole('button', { name: 'Sign out', exact: true });
    await signOut.click();
    const question = page.getByRole('dialog', { name: 'Keep your draft?' });
    await expect(question).toBeVisible();
    // By keyboard: the question has the focus, Escape closes it and gives the focus back.
    const keep = question.getByRole('button', { name: 'Keep draft and sign out' });
    await expect(keep).toBeFocused();
    await page.keyboard.press('Escape');
    await expect(question).toHaveCount(0);
    await expect(signOut).toBeFocused();
    await signOut.click();
    await keep.click();
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');

    // Another user signs in on the same browser (after the provider's session is gone too).
    await context.clearCookies({ name: 'idp_session' });
    await page.goto('/form');
    await signInAtProvider(page, USERS.ivan.username, USERS.ivan.password);
    await expect(page).toHaveURL('/form');
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');

    // Heidi comes back to her draft, then signs out dropping it.
    await context.clearCookies({ name: 'idp_session' });
    await page.goto('/form');
    await signInAtProvider(page, USERS.heidi.username, USERS.heidi.password);
    await waitForHydration(page);
    await expect(page.getByLabel('Title')).toHaveValue('Heidi’s report');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Delete draft and sign out' }).click();
    await expect(page.getByTestId('session-badge')).toHaveText('Signed out');
    const stored = await page.evaluate(() => Object.keys(localStorage));
    expect(stored.filter((key) => key.includes(USERS.heidi.sub))).toEqual([]);
  });

  test('a second tab left open never overwrites the draft typed in another, and shows it', async ({ page, context }) => {
    await signIn(page, '/form', USERS.grace);
    const other = await context.newPage();
    await other.goto('/form');
    await waitForHydration(other);

    await page.getByLabel('Title').fill('Typed in the first tab');
    await expect(page.getByTestId('draft-status')).toContainText('Draft saved');
    // The untouched tab takes up the draft as it is written, so typing there goes on from it.
    await expect(other.getByLabel('Title')).toHaveValue('Typed in the first tab');
    await page.close();
    // Leaving, it writes nothing over the draft, and does not delete it.
    await other.goto('/');
    const third = await context.newPage();
    await third.goto('/form');
    await waitForHydration(third);
    await expect(third.getByLabel('Title')).toHaveValue('Typed in the first tab');
  });

  test('what is typed while a report is on its way stays, in the form and in the draft', async ({ page }) => {
    await signIn(page, '/form', USERS.grace);
    await page.getByLabel('Title').fill('Door sticks');
    // The report is held on its way to the server while the user types on.
    const release = await submitHeld(page);
    const notes = page.getByLabel('Notes');
    await notes.fill('Typed after sending');
    release();
    await expect(page.getByTestId('form-result')).toHaveText('Received 11 characters.');
    await expect(notes).toHaveValue('Typed after sending');
    await expect(page.getByLabel('Title')).toHaveValue('Door sticks');
    await page.reload();
    await waitForHydration(page);
    await expect(notes).toHaveValue('Typed after sending');
  });

  test('a tab that missed the other tab\'s writes never overwrites its draft when it leaves', async ({
    page,
    context,
  }) => {
    await signIn(page, '/form', USERS.grace);
    const other = await context.newPage();
    // This tab hears nothing of the other's writes, as a tab frozen in the background.
    await other.addInitScript(() =>
      window.addEventListener('storage', (event) => event.stopImmediatePropagation(), true),
    );
    await other.goto('/form');
    await waitForHydration(other);

    await page.getByLabel('Title').fill('Typed in the first tab');
    await expect(page.getByTestId('draft-status')).toContainText('Draft saved');
    await page.close();
    await expect(other.getByLabel('Title')).toHaveValue('');
    // Leaving with its empty, untouched form: it neither deletes the draft nor writes over it.
    await other.goto('/');
    const third = await context.newPage();
    await third.goto('/form');
    await waitForHydration(third);
    await expect(third.getByLabel('Title')).toHaveValue('Typed in the first tab');
  });

  test('a report saved in one tab does not clear what another tab typed on meanwhile', async ({ page, context }) => {
    // This tab hears nothing of the other's writes, as a tab in the background whose events come
    // late.
    await page.addInitScript(() =>
      window.addEventListener('storage', (event) => event.stopImmediatePropagation(), true),
    );
    await signIn(page, '/form', USERS.grace);
    await page.getByLabel('Title').fill('Door sticks');
    await expect(page.getByTestId('draft-status')).toContainText('Draft saved');
    const other = await context.newPage();
    await other.goto('/form');
    await waitForHydration(other);
    await expect(other.getByLabel('Title')).toHaveValue('Door sticks');

    // The report is on its way while the other tab types on.
    const release = await submitHeld(page);
    await other.getByLabel('Notes').fill('Typed in the other tab');
    await expect(other.getByTestId('draft-status')).toContainText('Draft saved');
    release();
    await expect(page.getByTestId('form-result')).toHaveText('Received 11 characters.');
    await expect(page.getByLabel('Notes')).toHaveValue('Typed in the other tab');
    await expect(other.getByLabel('Notes')).toHaveValue('Typed in the other tab');
    const third = await context.newPage();
    await third.goto('/form');
    await waitForHydration(third);
    await expect(third.getByLabel('Notes')).toHaveValue('Typed in the other tab');
  });
});
