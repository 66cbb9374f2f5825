// The viewer's end-to-end tests in a real browser: Debian's Chromium driven by playwright-core
// (its executablePath set to the Debian binary; no browser is downloaded). A Rust test
// (tests/e2e/viewer.rs) starts Invicta and the identity provider, then runs this with a plan of
// steps as JSON in VIEWER_PLAN; each `observe` step reports what the page shows, the serious and
// critical axe-core findings, and writes a screenshot at desktop and phone width. The report is
// printed as one JSON line.
//
//   VIEWER_PLAN='{"steps":[...],"screenshots":"DIR"}' node viewer-browser.mjs
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const plan = JSON.parse(process.env.VIEWER_PLAN ?? '{}');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 320, height: 720 };

// Nothing here may hang a test run.
setTimeout(() => {
  console.error('viewer-browser: gave up after 150 s');
  process.exit(2);
}, 150_000).unref();

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const report = { observations: {}, console: [], cspViolations: [], pageErrors: [] };
try {
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'Europe/London' });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  let fhirRequests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/fhir')) fhirRequests.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  page.on('console', (m) => {
    report.console.push(`${m.type()}: ${m.text()}`);
    if (/Content Security Policy/i.test(m.text())) report.cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e?.message ?? e)));

  for (const step of plan.steps ?? []) {
    if (step.goto) {
      fhirRequests = [];
      await page.goto(step.goto);
    } else if (step.start) {
      await page.click(step.start === 'citizen' ? '#sign-in-citizen' : '#sign-in-staff');
    } else if (step.signIn) {
      await signIn(page, step.signIn);
    } else if (step.find) {
      fhirRequests = [];
      await page.fill('#nhs-number', step.find);
      await page.click('#find-submit');
      await page.waitForSelector('#withheld, #banner, #find-answer p');
    } else if (step.breakGlass || step.claim) {
      fhirRequests = [];
      const id = step.breakGlass ? 'break-glass' : 'claim';
      await page.evaluate(() => { document.body.dataset.ready = 'false'; });
      await page.fill(`#${id}-reason`, step.breakGlass ?? step.claim);
      // By keyboard, as a person without a mouse would.
      await page.focus(`#${id}-submit`);
      await page.keyboard.press('Enter');
      await page.waitForSelector('body[data-ready="true"]');
    } else if (step.timelineKind || step.timelineSource) {
      if ('timelineKind' in step) await page.selectOption('#timeline-kind', step.timelineKind);
      if ('timelineSource' in step) await page.selectOption('#timeline-source', step.timelineSource);
      await page.click('#timeline-filters button[type="submit"]');
      await page.waitForSelector('#timeline-entries:not([aria-busy])');
    } else if (step.timelineOlder) {
      await page.click('#timeline-older');
      await page.waitForSelector('#timeline-newer');
    } else if (step.observe) {
      report.observations[step.observe] = await observe(page, step, fhirRequests);
    }
  }
} catch (e) {
  report.error = String(e?.stack ?? e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));

/** Invicta's sign-in page → the provider → its login and consent pages → Invicta's consent. */
async function signIn(page, { provider, login }) {
  await page.waitForURL(/\/auth\/signin\?/);
  await page.click(`a[href*="/idp/${provider}/start"]`);
  await page.waitForSelector('input[name="login"]');
  const idp = new URL(page.url()).origin;
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  // The provider's consent page (the first sign-in of this account to Invicta), then back.
  for (let i = 0; i < 3 && new URL(page.url()).origin === idp; i += 1) {
    await page.waitForLoadState();
    if (new URL(page.url()).origin !== idp) break;
    const button = await page.$('button[type="submit"]');
    if (button) await Promise.all([page.waitForNavigation(), button.click()]);
  }
  await page.waitForURL((u) => u.origin !== idp);
  await page.waitForLoadState();
  if (new URL(page.url()).pathname === '/auth/consent') {
    await page.click('button[value="allow"]');
  }
}

async function observe(page, step, fhirRequests) {
  await page.waitForSelector(step.waitFor ?? 'body[data-ready="true"]');
  const seen = await page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.innerText ?? null;
    return {
      url: location.pathname,
      title: document.title,
      heading: text('h1'),
      sections: [...document.querySelectorAll('#app section[id]')].map((s) => s.id),
      banner: text('#banner'),
      alerts: [...document.querySelectorAll('#alerts .viewer-alert')].map((a) => ({ kind: a.dataset.kind, text: a.innerText })),
      allergies: text('#allergies'),
      medications: text('#medications'),
      stoppedMedicationsCollapsed: document.querySelector('#stopped-medications') ? !document.querySelector('#stopped-medications').open : null,
      care: text('#care'),
      results: text('#results'),
      charts: [...document.querySelectorAll('#results figure')].map((f) => ({ id: f.id, points: f.querySelectorAll('circle').length })),
      timeline: [...document.querySelectorAll('#timeline-list li')].map((li) => ({ type: li.dataset.type, text: li.innerText })),
      accessLog: [...document.querySelectorAll('#access-log tbody tr')].map((tr) => tr.innerText),
      withheld: text('#withheld'),
      breakGlassInForce: Boolean(document.querySelector('#break-glass-in-force')),
      body: document.body.innerText.slice(0, 4000),
      appRequests: Number(document.body.dataset.fhirRequests ?? 0),
    };
  });
  seen.networkFhirRequests = [...fhirRequests];
  seen.axe = {};
  seen.screenshots = [];
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(viewport);
    if (step.axe !== false) seen.axe[label] = await axe(page);
    if (plan.screenshots) {
      const path = `${plan.screenshots}/${step.observe}-${label}.png`;
      await page.screenshot({ path, fullPage: true });
      seen.screenshots.push(path);
      if (label === 'desktop') {
        // The first screen as a person sees it on opening the page.
        await page.evaluate(() => window.scrollTo(0, 0));
        const first = `${plan.screenshots}/${step.observe}-first-screen.png`;
        await page.screenshot({ path: first });
        seen.screenshots.push(first);
      }
    }
    if (label === 'phone') {
      seen.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      // What sticks out, to say where the layout breaks.
      seen.phoneWide = await page.evaluate(() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .filter((e) => !e.closest('.viewer-table-wrap') || e.classList.contains('viewer-table-wrap'))
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className?.baseVal ?? e.className} ${Math.round(e.getBoundingClientRect().width)}px`));
    }
  }
  await page.setViewportSize(DESKTOP);
  if (step.axe !== false) seen.keyboard = await keyboardReach(page);
  return seen;
}

/** Serious and critical axe-core violations of the page (WCAG 2.0–2.2 A and AA rules). */
async function axe(page) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
  }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
}

/** Tabs through the page: which controls the keyboard reaches, and whether focus is visible. */
async function keyboardReach(page) {
  // From the top of the page, as a keyboard user arriving at it: the skip link comes first.
  await page.focus('a.nhsuk-skip-link');
  const reached = [{ id: null, tag: 'a', text: 'Skip to main content', outlined: true }];
  for (let i = 0; i < 120; i += 1) {
    await page.keyboard.press('Tab');
    const el = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return null;
      const style = getComputedStyle(a);
      return { id: a.id || null, tag: a.tagName.toLowerCase(), text: (a.innerText || a.getAttribute('aria-label') || '').slice(0, 40), outlined: style.outlineStyle !== 'none' || style.boxShadow !== 'none' || style.backgroundColor !== 'rgba(0, 0, 0, 0)' };
    });
    if (!el) break;
    // A date input takes three stops (day, month, year); count it once.
    if (el.id && reached.at(-1)?.id === el.id) continue;
    // Back at the first control: the whole page has been walked.
    if (reached.length > 2 && el.tag === 'a' && el.text.startsWith('Skip to main')) break;
    reached.push(el);
  }
  return reached;
}
