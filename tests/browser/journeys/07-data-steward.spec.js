// The data steward's worklist, and a comparison when the demo raised a possible match.
const { test, expect } = require('@playwright/test');
const { checkPage, signIn } = require('./support');

test('the data steward opens the matching worklist', async ({ page }, testInfo) => {
  await signIn(page, testInfo, 'data.steward');
  await expect(page).toHaveURL(/\/portal\/admin\/matching$/);
  await expect(page.locator('h1')).toHaveText('Matching worklist');
  await checkPage(page, testInfo, 'worklist');
  const compare = page.locator('#worklist a[href^="/portal/admin/matching/"]');
  if ((await compare.count()) > 0) {
    await compare.first().click();
    await expect(page.locator('#comparison')).toBeVisible();
    await checkPage(page, testInfo, 'comparison');
    await page.locator('#match-decision button[type=submit]').click();
    await expect(page.locator('.error-summary')).toContainText('Choose whether to link');
    await checkPage(page, testInfo, 'decision-missing');
  }
});
