// A GP finds a person by NHS number and reads their summary in the single view.
const { test, expect } = require('@playwright/test');
const { person, patientAccountPerson, formatNhs, checkPage, signIn, openByNhsNumber } = require('./support');

test('a clinician finds a person by NHS number and reads the summary', async ({ page }, testInfo) => {
  await page.goto('/portal/');
  await expect(page.locator('h1')).toBeVisible();
  await checkPage(page, testInfo, 'front-page');

  const patientAccount = patientAccountPerson();
  // Someone held only by sources that are running (the demo runs with the community trust down).
  const someone = person(
    (p) => p.orgs.includes('gp') && !p.orgs.includes('community') && p.nhs !== patientAccount.nhs,
    'held by the GP and not by the community trust',
  );
  await signIn(page, testInfo, 'gp.clinician');
  await expect(page).toHaveURL(/\/portal\/search/);
  await checkPage(page, testInfo, 'search-form');

  const opened = await openByNhsNumber(page, testInfo, someone.nhs, 'search-results');
  expect(opened.status).toBe(200);
  await expect(page.locator('#patient-banner')).toBeVisible();
  await expect(page.locator('#banner-nhs-number')).toContainText(formatNhs(someone.nhs));
  await expect(page.locator('#patient-banner .banner-name')).toContainText(someone.name.split(' ').pop());
  await expect(page.locator('#summary')).toBeVisible();
  await checkPage(page, testInfo, 'single-view');

  // Searching by name, date of birth and postcode goes through the master patient index.
  const [given, ...family] = someone.name.split(' ');
  await page.goto('/portal/search');
  await page.locator('[name=family]').fill(family.join(' '));
  await page.locator('[name=given]').fill(given);
  await page.locator('[name=birthdate]').fill(someone.birthDate);
  await page.locator('[name=postcode]').fill(someone.postcode);
  await page.locator('form:has([name=family])').locator('button[type=submit]').first().click();
  await expect(page.locator('#results')).toContainText(family.join(' '));
  await checkPage(page, testInfo, 'search-by-demographics');
});
