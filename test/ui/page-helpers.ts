import type { Page } from 'playwright-core';

/** Collects what must fail a UI test: any dialog (dismissed), page error or console error. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

/** Signs in through the page's own form and waits until the header names the user. */
export async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password or robot token').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#whoami').filter({ hasText: user }).waitFor();
}
