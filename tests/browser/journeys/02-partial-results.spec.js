// One source is down (tools/browser.sh starts the demo with `--down community`): a view of a
// person it holds names it in the partial-result bar, and shows what the others sent.
const { test, expect } = require('@playwright/test');
const { person, checkPage, signIn, openByNhsNumber } = require('./support');

test('a view with one source down shows the partial-result bar', async ({ page }, testInfo) => {
  const someone = person((p) => p.orgs.includes('community') && p.orgs.includes('gp'), 'held by the community trust and the GP');
  await signIn(page, testInfo, 'gp.clinician');
  const opened = await openByNhsNumber(page, testInfo, someone.nhs);
  expect(opened.status).toBe(200);
  const bar = page.locator('#sources-bar');
  await expect(bar).toBeVisible();
  await expect(bar).toHaveAttribute('role', 'status');
  await expect(bar).toContainText('Five Towns Community Health NHS Trust');
  await expect(page.locator('#patient-banner')).toBeVisible();
  await checkPage(page, testInfo, 'partial-view');
});
