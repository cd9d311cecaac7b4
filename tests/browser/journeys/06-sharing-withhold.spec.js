// The patient blocks the acute trust in their sharing choices. The hospital doctor, who saw the
// whole shared record before (the trust holds a record of them), then sees only what the trust
// holds itself: nothing from the GP practice or anyone else, and a notice that information is
// withheld.
const { test, expect } = require('@playwright/test');
const { patientAccountPerson, checkPage, signIn, openByNhsNumber } = require('./support');

test('a patient withholds their record from an organisation and its user loses access', async ({ page, browser }, testInfo) => {
  const me = patientAccountPerson();
  const doctorContext = await browser.newContext();
  const doctor = await doctorContext.newPage();
  await signIn(doctor, testInfo, 'hospital.doctor');
  const before = await openByNhsNumber(doctor, testInfo, me.nhs);
  expect(before.status).toBe(200);
  await expect(doctor.locator('#patient-banner')).toBeVisible();
  await expect(doctor.locator('#summary')).toBeVisible();
  await expect(doctor.locator('.source', { hasText: 'Beckside Medical Practice' }).first()).toBeVisible();
  await checkPage(doctor, testInfo, 'hospital-doctor-before');

  await signIn(page, testInfo, 'patient');
  await page.goto('/portal/me/sharing');
  await checkPage(page, testInfo, 'sharing-choices');
  await page.locator('input[name=block_org][value=R9A]').check();
  await page.locator('form:has([name=block_org])').locator('button[type=submit]').first().click();
  await expect(page).toHaveURL(/\/portal\/me\/sharing\?saved=1/);
  await expect(page.locator('#saved')).toBeVisible();
  await expect(page.locator('input[name=block_org][value=R9A]')).toBeChecked();
  await checkPage(page, testInfo, 'sharing-saved');

  const after = await doctor.goto(before.href);
  expect(after.status()).toBe(200);
  await expect(doctor.locator('#withheld')).toBeVisible();
  await expect(doctor.locator('.source', { hasText: 'Beckside Medical Practice' })).toHaveCount(0);
  await expect(doctor.locator('.source', { hasText: 'Aire and Calder Hospitals' }).first()).toBeVisible();
  await checkPage(doctor, testInfo, 'hospital-doctor-after');
  await doctorContext.close();
});
