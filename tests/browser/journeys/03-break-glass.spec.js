// A mental health nurse opens someone their trust holds no record of: refused with the
// break-glass offer; with a reason and their own words the record opens, marked as audited.
const { test, expect } = require('@playwright/test');
const { BREAK_GLASS_WORDS: WORDS, person, checkPage, signIn, openByNhsNumber } = require('./support');

test('break-glass opens a record with no care relationship, with a reason', async ({ page }, testInfo) => {
  const stranger = person(
    (p) => !p.orgs.includes('mental-health') && !p.orgs.includes('community'),
    'not held by the mental health trust or the community trust',
  );
  await signIn(page, testInfo, 'mh.nurse');
  const opened = await openByNhsNumber(page, testInfo, stranger.nhs);
  expect(opened.status).toBe(403);
  await expect(page.locator('main')).toContainText('You do not have a recorded care relationship with this person');
  const form = page.locator('form#break-glass');
  await expect(form).toBeVisible();
  await checkPage(page, testInfo, 'refused-with-offer');

  await form.locator('select[name=reason]').selectOption('emergency-care');
  await form.locator('textarea[name=text]').fill(WORDS);
  await form.getByRole('button', { name: 'Break glass and open the record' }).click();
  await expect(page).toHaveURL(new RegExp(`${opened.href}$`));
  await expect(page.locator('#break-glass-notice')).toBeVisible();
  await expect(page.locator('#patient-banner')).toBeVisible();
  await checkPage(page, testInfo, 'opened-by-break-glass');
});
