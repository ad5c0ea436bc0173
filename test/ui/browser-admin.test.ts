import assert from 'node:assert/strict';
import { signIn, watchProblems } from './page-helpers.js';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { USERS } from '../auth/fixture.js';
import { startAdminFixture, type AdminFixture } from './admin-fixture.js';

// Screenshots go to a scratch folder, or where SLUICE_UI_SCREENSHOTS says (docs/ui to refresh the docs' pictures).
const SHOTS = process.env['SLUICE_UI_SCREENSHOTS'] ?? join(tmpdir(), 'sluice-ui-shots');
mkdirSync(SHOTS, { recursive: true });

// The functions handed to page.evaluate run in the page; these are the page globals they touch (no DOM lib here).
declare const document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> };

let fx: AdminFixture;
let browser: Browser;

before(async () => {
  fx = await startAdminFixture();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await fx?.close();
});

/** A fresh browser context whose page fails the test on any dialog, page error or console error. */
async function open(
  t: { after(fn: () => Promise<void>): void },
  path = '/',
): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(`${fx.reg.url}${path}`);
  return { page, problems };
}

const login = (page: Page, user: keyof typeof USERS): Promise<void> => signIn(page, user, USERS[user]);

const pages = (page: Page) => page.getByRole('navigation', { name: 'Pages' });

test('an administrator sees a run refused with its reason, runs the job now and sees the new run', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'carol');
  // The link is reached and followed with the keyboard.
  const jobsLink = pages(page).getByRole('link', { name: 'Mirror jobs' });
  await jobsLink.focus();
  await page.keyboard.press('Enter');
  const row = page.locator('table.list tbody tr').filter({ hasText: 'app' });
  await row.waitFor();
  const text = (await row.textContent()) ?? '';
  assert.match(text, /every 1h/);
  assert.match(text, /1 copied/);
  assert.match(text, /1 refused/);
  await page.screenshot({ path: join(SHOTS, 'jobs.png'), fullPage: true });
  await row.getByRole('link', { name: 'app' }).click();
  const refused = page.locator('article.run').first();
  await refused.getByRole('heading', { name: 'Refused' }).waitFor();
  const runText = (await refused.textContent()) ?? '';
  assert.match(runText, /docker\.io\/library\/app:1\.1-rc1/);
  assert.match(runText, /no release candidates/);
  assert.match(runText, /docker\.io\/library\/app:1\.0/);
  await page.getByRole('button', { name: 'Run job app now' }).click();
  await page.waitForFunction(() => document.querySelectorAll('article.run').length === 2, undefined, {
    timeout: 30_000,
  });
  await page.getByRole('button', { name: 'Run job app now' }).and(page.locator(':enabled')).waitFor();
  assert.match((await page.locator('article.run').first().textContent()) ?? '', /1 unchanged/);
  await page.screenshot({ path: join(SHOTS, 'job-runs.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('an administrator filters the audit log to a denied pull', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'carol');
  await pages(page).getByRole('link', { name: 'Audit log' }).click();
  await page.locator('table.list tbody tr').first().waitFor();
  await page.getByLabel('User').fill('bob');
  await page.getByLabel('Decision').selectOption('denied');
  await page.getByLabel('Action').selectOption('pull');
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll('table.list tbody tr'));
    return rows.length > 0 && rows.every((r) => /bob/.test(r.textContent ?? '') && /pull/.test(r.textContent ?? ''));
  });
  const first = (await page.locator('table.list tbody tr').first().textContent()) ?? '';
  assert.match(first, /team-a\/app/);
  assert.match(first, /denied/);
  assert.match(page.url(), /decision=denied/);
  await page.screenshot({ path: join(SHOTS, 'audit.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('the explainer answers for anyone to an administrator, as sluice policy explain prints it', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'carol');
  await pages(page).getByRole('link', { name: 'Explain' }).click();
  await page.getByLabel('Who').selectOption('user');
  await page.getByLabel('Name').fill('bob');
  await page.getByLabel('Action').selectOption('pull');
  await page.getByLabel('Image').fill('team-a/app:v1');
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.getByRole('heading', { name: 'For bob' }).waitFor();
  const out = (await page.locator('pre.explain-out').textContent()) ?? '';
  assert.match(out, /^pull: DENIED/);
  assert.match(out, /reason: {2}pull on team-a\/app:v1 for bob/);
  // Every access action for alice: each line names the deciding rule, as the CLI prints it.
  await page.getByLabel('Name').fill('alice');
  await page.getByLabel('Action').selectOption('pull,push,overwrite,delete');
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.getByRole('heading', { name: 'For alice' }).waitFor();
  const all = (await page.locator('pre.explain-out').textContent()) ?? '';
  assert.match(all, /push: ALLOWED\n {2}rule: {4}rule 1 "team-a"/);
  assert.match(all, /overwrite: DENIED/);
  await page.screenshot({ path: join(SHOTS, 'explain.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('the lifecycle page shows usage and the tag retention deletes next, with the rule', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'carol');
  await pages(page).getByRole('link', { name: 'Lifecycle' }).click();
  const row = page.locator('table.list tbody tr').filter({ hasText: 'team-a/app' });
  await row.waitFor();
  const text = (await row.textContent()) ?? '';
  assert.match(text, /v0/);
  assert.match(text, /latest of team-a/);
  assert.doesNotMatch(text, /v1/);
  await page.screenshot({ path: join(SHOTS, 'lifecycle.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('a non-administrator sees no admin links, is told no on the pages, and may explain only for itself', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'bob');
  const links = await pages(page).getByRole('link').allTextContents();
  assert.deepEqual(links, ['Repositories', 'Lifecycle', 'Explain']);
  await page.goto(`${fx.reg.url}/#/jobs`);
  await page.getByRole('alert').filter({ hasText: 'Only administrators may see mirror jobs' }).waitFor();
  await page.goto(`${fx.reg.url}/#/audit`);
  await page.getByRole('alert').filter({ hasText: 'Only administrators may see the audit log' }).waitFor();
  assert.equal(await page.locator('table.list').count(), 0);
  const status = await page.evaluate(async () => (await fetch('/api/v1/audit')).status);
  assert.equal(status, 403);
  await page.goto(`${fx.reg.url}/#/explain`);
  assert.deepEqual(await page.getByLabel('Who').locator('option').allTextContents(), ['Me (bob)']);
  await page.getByLabel('Image').fill('public/tool');
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.getByRole('heading', { name: 'For bob' }).waitFor();
  // Anonymous sees no admin links either.
  const anon = await open(t);
  await anon.page.locator('#pages a').first().waitFor();
  assert.deepEqual(await pages(anon.page).getByRole('link').allTextContents(), [
    'Repositories',
    'Lifecycle',
    'Explain',
  ]);
  assert.deepEqual([...problems, ...anon.problems], []);
});
