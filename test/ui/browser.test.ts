import assert from 'node:assert/strict';
import { signIn, watchProblems } from './page-helpers.js';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { HOSTILE_LABEL, HOSTILE_URL, startUiFixture, USERS, type UiFixture } from './fixture.js';

// Screenshots go to a scratch folder, or where SLUICE_UI_SCREENSHOTS says (docs/ui to refresh the docs' pictures).
const SHOTS = process.env['SLUICE_UI_SCREENSHOTS'] ?? join(tmpdir(), 'sluice-ui-shots');
mkdirSync(SHOTS, { recursive: true });

// The functions handed to page.evaluate run in the page; these are the page globals they touch (no DOM lib here).
type PageText = { textContent: string | null };
declare const document: {
  body: PageText;
  querySelectorAll(s: string): ArrayLike<PageText>;
  querySelector(s: string): PageText | null;
};
declare const navigator: { clipboard: { readText(): Promise<string> } };
declare function getComputedStyle(el: unknown): { backgroundColor: string };
declare const location: { hash: string };

let fx: UiFixture;
let browser: Browser;

before(async () => {
  fx = await startUiFixture();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await fx?.close();
});

/** A fresh browser context (no cookies) whose page fails the test on any dialog, page error or blocked script. */
async function open(
  t: { after(fn: () => Promise<void>): void },
  path = '/',
  colorScheme: 'light' | 'dark' = 'light',
): Promise<{ page: Page; context: BrowserContext; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme });
  t.after(() => context.close());
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: fx.reg.url });
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(`${fx.reg.url}${path}`);
  return { page, context, problems };
}

const login = (page: Page, user: keyof typeof USERS): Promise<void> => signIn(page, user, USERS[user]);

const repoNames = (page: Page) => page.locator('table.list tbody th').allTextContents();

test('anonymous sees only what anonymous may pull, and the page carries a CSP without unsafe-inline', async (t) => {
  const { page, problems } = await open(t);
  await page.locator('table.list tbody tr').first().waitFor();
  await page.waitForFunction(() => !document.body.textContent?.includes('…'));
  assert.deepEqual(await repoNames(page), ['docker.io/library/nginx', 'prod/app', 'public/tool']);
  const text = (await page.textContent('body')) ?? '';
  assert.doesNotMatch(text, /secret|team-a/);
  assert.match(text, /3 in all/);
  await page.screenshot({ path: join(SHOTS, 'repositories.png'), fullPage: true });
  const res = await fetch(fx.reg.url);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  // A repository anonymous may not pull, asked for by address, shows the refusal and no tags.
  const hidden = await open(t, '/#/repo?name=secret/app');
  await hidden.page.getByRole('alert').waitFor();
  assert.match((await hidden.page.getByRole('alert').textContent()) ?? '', /authentication required/);
  assert.equal(await hidden.page.locator('table.list').count(), 0);
  assert.deepEqual(problems, []);
});

test('search and the kind filter are answered by the server', async (t) => {
  const { page, problems } = await open(t);
  await page.locator('table.list tbody tr').first().waitFor();
  await page.keyboard.press('/');
  await page.keyboard.type('tool');
  await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1);
  assert.deepEqual(await repoNames(page), ['public/tool']);
  assert.match(page.url(), /q=tool/);
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Kind').selectOption('cache');
  // The answers to the cleared search and to the kind arrive in either order: wait for the one that has both.
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll('table.list tbody th'));
    return rows.length === 1 && rows[0]!.textContent === 'docker.io/library/nginx' && !location.hash.includes('q=');
  });
  assert.deepEqual(await repoNames(page), ['docker.io/library/nginx']);
  assert.deepEqual(problems, []);
});

test('alice logs in, sees her repository, filters tags by platform, sorts by size and copies a pull command', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'alice');
  await page.getByRole('link', { name: 'team-a/app' }).click();
  await page.locator('table.list tbody tr').first().waitFor();
  assert.deepEqual(await page.locator('table.list tbody th').allTextContents(), ['old', 'v1', 'v2']);
  assert.equal(await page.locator('tbody tr').nth(1).locator('.chip').count(), 3);
  await page.screenshot({ path: join(SHOTS, 'repository.png'), fullPage: true });
  await page.getByLabel('Platform', { exact: true }).selectOption('linux/s390x');
  await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1);
  assert.deepEqual(await page.locator('table.list tbody th').allTextContents(), ['v1']);
  await page.getByLabel('Platform', { exact: true }).selectOption('');
  await page.getByLabel('Sort by').selectOption('size');
  await page.getByLabel('Order').selectOption('desc');
  await page.waitForFunction(() => document.querySelector('table.list tbody th')?.textContent === 'v1');
  await page.getByRole('link', { name: 'v1' }).click();
  const copy = page.getByRole('button', { name: 'Copy docker pull command by tag' });
  await copy.click();
  await page.getByRole('button', { name: 'Copy docker pull command by tag' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'docker pull registry.test/team-a/app:v1');
  await page.screenshot({ path: join(SHOTS, 'image-index.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('a signed image says who signed it; an unsigned one says why the rule refuses it', async (t) => {
  const { page, problems } = await open(t, '/#/image?name=prod/app&ref=1');
  await page.getByText('Signed by key hive').waitFor();
  await page.screenshot({ path: join(SHOTS, 'image-signed.png'), fullPage: true });
  const refused = await open(t, '/#/image?name=prod/app&ref=2');
  await refused.page.getByText('Refused by the trust rules').waitFor();
  assert.match((await refused.page.textContent('body')) ?? '', /trust rule 1 "prod signed"/);
  // Why: anonymous may pull here by rule 1 and may not push, and the panel says which rule decides.
  await refused.page.getByRole('heading', { name: 'Why' }).waitFor();
  const why = (await refused.page.locator('.why').textContent()) ?? '';
  assert.match(why, /pull allowed rule 1/);
  assert.match(why, /push denied/);
  assert.match(why, /pulls must satisfy trust rule 1 "prod signed"/);
  await refused.page.screenshot({ path: join(SHOTS, 'image-refused.png'), fullPage: true });
  assert.deepEqual([...problems, ...refused.problems], []);
});

test('labels and annotations from an image are shown as text: no script runs, no javascript: link exists', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'alice');
  await page.goto(`${fx.reg.url}/#/image?name=team-a/app&ref=v2`);
  await page.getByRole('heading', { name: 'Referrers' }).waitFor();
  const body = (await page.textContent('body')) ?? '';
  assert.ok(body.includes(HOSTILE_LABEL), 'the label is shown as text');
  assert.ok(body.includes(HOSTILE_URL), 'the annotation is shown as text');
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('a[href^="javascript:"]').count(), 0);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(SHOTS, 'image-hostile.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('alice deletes a tag after confirming; without the CSRF token the same request is refused', async (t) => {
  const { page, problems } = await open(t);
  await login(page, 'alice');
  // A request with the session cookie but without the CSRF header, as another page of this origin could not forge.
  const forged = await page.evaluate(
    async () => (await fetch('/api/v1/tags?repository=team-a/app&tag=old', { method: 'DELETE' })).status,
  );
  assert.equal(forged, 403);
  await page.goto(`${fx.reg.url}/#/repo?name=team-a/app`);
  await page.getByRole('button', { name: 'Delete tag old' }).click();
  await page.getByRole('dialog').getByText('team-a/app:old').waitFor();
  await page.screenshot({ path: join(SHOTS, 'delete-confirm.png') });
  await page.getByRole('button', { name: 'Delete tag', exact: true }).click();
  await page.waitForFunction(
    () => !Array.from(document.querySelectorAll('table.list tbody th')).some((x) => x.textContent === 'old'),
  );
  const gone = await fetch(`${fx.reg.url}/v2/team-a/app/manifests/old`, {
    headers: { authorization: `Basic ${Buffer.from(`alice:${USERS.alice}`).toString('base64')}` },
  });
  assert.equal(gone.status, 404);
  // bob may not delete: no button.
  const other = await open(t);
  await login(other.page, 'bob');
  await other.page.goto(`${fx.reg.url}/#/repo?name=prod/app`);
  await other.page.locator('table.list tbody tr').first().waitFor();
  assert.equal(await other.page.getByRole('button', { name: /Delete tag/ }).count(), 0);
  assert.deepEqual([...problems, ...other.problems], []);
});

test('the cached image shows its upstream and the flow rule that let it in', async (t) => {
  const { page, problems } = await open(t, '/#/image?name=docker.io/library/nginx&ref=1.27');
  await page.getByRole('heading', { name: 'Provenance' }).waitFor();
  const body = (await page.textContent('body')) ?? '';
  assert.match(body, /approved by flow rule 1 "official images"/);
  assert.ok(body.includes(fx.upstream.url), 'the upstream URL');
  await page.screenshot({ path: join(SHOTS, 'image-cached.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('the dark theme follows the system preference', async (t) => {
  const { page, problems } = await open(t, '/#/repo?name=prod/app', 'dark');
  await page.locator('table.list tbody tr').first().waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(15, 19, 24)');
  await page.screenshot({ path: join(SHOTS, 'repository-dark.png'), fullPage: true });
  assert.deepEqual(problems, []);
});
