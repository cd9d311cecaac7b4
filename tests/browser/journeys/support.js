// Shared steps for the portal's browser journeys: the demo's people and accounts, signing in
// through the real authorization server form, and the check every page gets (a screenshot
// kept as a CI artifact and an axe-core run that fails on serious or critical violations).
const fs = require('fs');
const path = require('path');
const { expect } = require('@playwright/test');

const PASSWORD = 'concord-demo';
/** What the nurse writes when breaking glass (journey 03), which the privacy officer finds (05). */
const BREAK_GLASS_WORDS = 'Browser journey: brought in confused, no history available';
const SCREENSHOTS = path.resolve(
  process.env.SCREENSHOTS || path.join(__dirname, '..', '..', '..', 'target', 'browser-screenshots'),
);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The demo's people, from DEMO_DATA/people.txt:
 *  `NHS  Given Family  born YYYY-MM-DD  POSTCODE  at gp, acute  (highlights)`. */
function people() {
  const file = path.join(process.env.DEMO_DATA || '', 'people.txt');
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [nhs, name, born, postcode, rest] = line.split(/ {2}/);
      const at = (rest || '').replace(/^at /, '');
      const highlights = (line.match(/\((.*)\)\s*$/) || [])[1] || '';
      return {
        nhs,
        name,
        birthDate: (born || '').replace(/^born /, ''),
        postcode,
        orgs: at.split(', ').map((o) => o.trim()),
        highlights,
      };
    });
}

/** The first person for whom `test(person)` holds; fails the journey when there is none. */
function person(test, what) {
  const found = people().find(test);
  if (!found) {
    throw new Error(`the demo has no person who is ${what}; see ${process.env.DEMO_DATA}/people.txt`);
  }
  return found;
}

/** The person the demo's `patient` account is: of those held by both the GP and the acute
 *  trust, the one held by the most organisations (the last such in people.txt on a tie, as
 *  `concord demo` chooses). */
function patientAccountPerson() {
  let chosen = null;
  for (const p of people()) {
    if (p.orgs.includes('gp') && p.orgs.includes('acute') && (!chosen || p.orgs.length >= chosen.orgs.length)) {
      chosen = p;
    }
  }
  if (!chosen) {
    throw new Error(`the demo has nobody held by the GP and the acute trust; see ${process.env.DEMO_DATA}/people.txt`);
  }
  return chosen;
}

/** `9434765919` as the portal writes it: `943 476 5919`. */
function formatNhs(nhs) {
  return `${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`;
}

let shot = 0;
/** Screenshot (kept) and accessibility check of the page as it is now. */
async function checkPage(page, testInfo, name) {
  await page.waitForLoadState('load');
  shot += 1;
  const journey = path.basename(testInfo.file, '.spec.js');
  const file = path.join(SCREENSHOTS, journey, `${String(shot).padStart(2, '0')}-${name}.png`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: true });
  // The portal's CSP admits no scripts; evaluating through the DevTools protocol is not a page
  // script, so axe runs without loosening the policy.
  const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!hasAxe) {
    await page.evaluate(AXE_SOURCE);
  }
  const results = await page.evaluate(() =>
    window.axe.run(document, {
      resultTypes: ['violations'],
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    }),
  );
  const blocking = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of results.violations) {
    const where = v.nodes.map((n) => `      ${n.target.join(' ')}: ${n.failureSummary.replace(/\n/g, ' ')}`).join('\n');
    console.log(`axe ${v.impact} ${v.id} on ${name} (${page.url()}): ${v.help}\n${where}`);
  }
  expect
    .soft(
      blocking.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
      `serious or critical accessibility violations on ${name} (${page.url()})`,
    )
    .toEqual([]);
  return file;
}

/** Signs in through the portal's sign-in (the node's authorization server form). */
async function signIn(page, testInfo, user) {
  await page.goto('/portal/login');
  await expect(page.locator('#username')).toBeVisible();
  if (user === 'gp.clinician') {
    await checkPage(page, testInfo, 'sign-in-form');
  }
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname.startsWith('/portal/') && !url.pathname.startsWith('/portal/callback'));
  await expect(page.locator('.signed-in')).toContainText(user);
}

/** Submits the form that holds `field` (not the sign-out form in the header). */
async function submitFormOf(page, field) {
  await page.locator(`form:has(${field})`).locator('button[type=submit], input[type=submit]').first().click();
}

/** Finds a person by NHS number on the search page and opens their record; returns the answer. */
async function openByNhsNumber(page, testInfo, nhs, screenshotName) {
  await page.goto('/portal/search');
  await page.locator('[name=nhs_number]').fill(nhs);
  await submitFormOf(page, '[name=nhs_number]');
  const results = page.locator('#results');
  await expect(results).toBeVisible();
  if (screenshotName) {
    await checkPage(page, testInfo, screenshotName);
  }
  const link = results.locator('a[href^="/portal/patient/"]').first();
  const href = await link.getAttribute('href');
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === href);
  await link.click();
  const response = await answer;
  await page.waitForLoadState('load');
  return { href, status: response.status() };
}

module.exports = {
  BREAK_GLASS_WORDS,
  PASSWORD,
  people,
  person,
  patientAccountPerson,
  formatNhs,
  checkPage,
  signIn,
  submitFormOf,
  openByNhsNumber,
};
