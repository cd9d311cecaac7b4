// The patient adds a blood pressure reading (a wrong value first, which the form names), and a
// GP then sees it in the single view marked as entered by the patient. The patient's other pages
// are visited for the accessibility check.
const { test, expect } = require('@playwright/test');
const { patientAccountPerson, checkPage, signIn, openByNhsNumber } = require('./support');

async function fillReading(page, systolic, diastolic) {
  const kind = page.locator('[name=kind]');
  if ((await kind.first().evaluate((e) => e.tagName)) === 'SELECT') {
    await kind.selectOption('blood-pressure');
  } else {
    await page.locator('[name=kind][value=blood-pressure]').check();
  }
  await page.locator('[name=systolic]').fill(systolic);
  await page.locator('[name=diastolic]').fill(diastolic);
  await page.locator('form:has([name=systolic])').locator('button[type=submit]').first().click();
}

test('a patient adds a blood pressure reading and a clinician sees it as patient-entered', async ({ page, browser }, testInfo) => {
  await signIn(page, testInfo, 'patient');
  await expect(page).toHaveURL(/\/portal\/me$/);
  await checkPage(page, testInfo, 'my-record');
  for (const [path, name] of [
    ['/portal/me/results', 'my-results'],
    ['/portal/me/appointments', 'my-appointments'],
    ['/portal/me/what-matters', 'what-matters'],
    ['/portal/me/access-log', 'access-log'],
  ]) {
    const response = await page.goto(path);
    expect(response.status(), path).toBe(200);
    await checkPage(page, testInfo, name);
  }

  await page.goto('/portal/me/readings');
  await checkPage(page, testInfo, 'readings-form');
  await fillReading(page, '999', '82');
  await expect(page.locator('.error-summary')).toContainText('systolic');
  await checkPage(page, testInfo, 'reading-out-of-range');
  await fillReading(page, '128', '82');
  await expect(page).toHaveURL(/\/portal\/me\/readings\?saved=1/);
  await expect(page.locator('#saved')).toBeVisible();
  await checkPage(page, testInfo, 'reading-saved');

  const clinicianContext = await browser.newContext();
  const clinician = await clinicianContext.newPage();
  await signIn(clinician, testInfo, 'gp.clinician');
  const opened = await openByNhsNumber(clinician, testInfo, patientAccountPerson().nhs);
  expect(opened.status).toBe(200);
  const tag = clinician.locator('.tag-patient', { hasText: 'Entered by the patient' }).first();
  await expect(tag).toBeVisible();
  await tag.scrollIntoViewIfNeeded();
  await checkPage(clinician, testInfo, 'clinician-sees-patient-entered');
  await clinicianContext.close();
});
