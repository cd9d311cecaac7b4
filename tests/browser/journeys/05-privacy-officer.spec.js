// The privacy officer reviews the break-glass the nurse made (journey 03) and searches the trail.
const { test, expect } = require('@playwright/test');
const { BREAK_GLASS_WORDS: WORDS, checkPage, signIn, submitFormOf } = require('./support');

test('the privacy officer sees the break-glass', async ({ page }, testInfo) => {
  await signIn(page, testInfo, 'privacy.officer');
  await expect(page).toHaveURL(/\/portal\/admin\/break-glass$/);
  const events = page.locator('#break-glass-events');
  await expect(events).toBeVisible();
  const row = events.locator('tbody tr', { hasText: WORDS }).first();
  await expect(row).toContainText('mh.nurse');
  await expect(row).toContainText('Emergency care');
  await expect(row).toContainText('R9B');
  await checkPage(page, testInfo, 'break-glass-review');

  await page.goto('/portal/admin/audit');
  await page.locator('#agent').fill('mh.nurse');
  await page.locator('#outcome').selectOption('denied');
  await submitFormOf(page, '#agent');
  await expect(page.locator('#audit-results')).toContainText('mh.nurse');
  await checkPage(page, testInfo, 'audit-search');

  await page.goto('/portal/admin/audit?from=07%2F03%2F2026');
  await expect(page.locator('.error-summary')).toContainText("'from' date");
  await checkPage(page, testInfo, 'audit-search-error');
});
