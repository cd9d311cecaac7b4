// On a phone-sized screen (375 × 812, as an iPhone's) the single view and the patient's record
// fit the width without sideways scrolling of the page, and pass the same accessibility check.
const { test, expect } = require('@playwright/test');
const { patientAccountPerson, checkPage, signIn, openByNhsNumber } = require('./support');

test.use({ viewport: { width: 375, height: 812 } });

/** Whether the page as a whole scrolls sideways (wide tables scroll inside their own box). */
async function overflowsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

test('the single view and my record fit a phone screen', async ({ page, browser }, testInfo) => {
  const me = patientAccountPerson();
  await signIn(page, testInfo, 'gp.clinician');
  const opened = await openByNhsNumber(page, testInfo, me.nhs);
  expect(opened.status).toBe(200);
  await expect(page.locator('#patient-banner')).toBeVisible();
  expect(await overflowsSideways(page)).toBe(false);
  await checkPage(page, testInfo, 'phone-single-view');

  const patientContext = await browser.newContext({ viewport: { width: 375, height: 812 } });
  const patient = await patientContext.newPage();
  await signIn(patient, testInfo, 'patient');
  await patient.goto('/portal/me');
  expect(await overflowsSideways(patient)).toBe(false);
  await checkPage(patient, testInfo, 'phone-my-record');
  await patient.goto('/portal/me/readings');
  expect(await overflowsSideways(patient)).toBe(false);
  await checkPage(patient, testInfo, 'phone-readings');
  await patientContext.close();
});
