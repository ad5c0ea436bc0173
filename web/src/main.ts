import { call, setCsrf, type Session } from './api.js';
import { announce, h, replace } from './dom.js';
import { imagePage } from './pages/image.js';
import { auditPage } from './pages/audit.js';
import { explainPage } from './pages/explain.js';
import { jobsPage } from './pages/jobs.js';
import { lifecyclePage } from './pages/lifecycle.js';
import { loginPage } from './pages/login.js';
import { repositoriesPage } from './pages/repositories.js';
import { repositoryPage } from './pages/repository.js';
import { currentRoute } from './route.js';

let session: Session = { login: false };

/** Which pages the caller may use (`GET /api/v1/pages`); the server decides again on every request. */
export interface Pages {
  explain: boolean;
  jobs: boolean;
  audit: boolean;
  lifecycle?: boolean;
}

let pages: Pages = { explain: true, jobs: false, audit: false };

/** The page links: only those the caller may use; the one shown is marked for screen readers. */
function pagesBar(): void {
  const nav = document.getElementById('pages');
  if (!nav) return;
  const current = currentRoute().page;
  const links: [string, string, boolean][] = [
    ['/', 'Repositories', true],
    ['/jobs', 'Mirror jobs', pages.jobs],
    ['/audit', 'Audit log', pages.audit],
    ['/lifecycle', 'Lifecycle', pages.lifecycle === true],
    ['/explain', 'Explain', pages.explain],
  ];
  replace(
    nav,
    ...links
      .filter(([, , shown]) => shown)
      .map(([page, text]) => h('a', { href: `#${page}`, 'aria-current': page === current ? 'page' : undefined }, text)),
  );
}

/** Asks which pages the caller may use, then redraws the links. */
async function refreshPages(): Promise<void> {
  pages = await call<Pages>('GET', '/api/v1/pages').catch(() => ({ explain: true, jobs: false, audit: false }));
  pagesBar();
}

function accountBar(): void {
  const nav = document.getElementById('account')!;
  if (session.user) {
    const out = h('button', { type: 'button', class: 'link' }, 'Sign out');
    out.addEventListener('click', () => {
      call('DELETE', '/api/v1/session').then(
        async () => {
          session = await call<Session>('GET', '/api/v1/session');
          setCsrf(undefined);
          announce('Signed out');
          accountBar();
          await refreshPages();
          show();
        },
        (e: Error) => announce(e.message),
      );
    });
    replace(nav, h('span', { class: 'muted' }, 'Signed in as '), h('strong', { id: 'whoami' }, session.user), ' ', out);
  } else if (session.login) {
    replace(nav, h('a', { href: '#/login' }, 'Sign in'));
  } else {
    replace(nav);
  }
}

/** Renders the page the location names. */
function show(): void {
  const main = document.getElementById('main')!;
  const route = currentRoute();
  switch (route.page) {
    case '/repo':
      repositoryPage(main, route);
      break;
    case '/image':
      imagePage(main, route);
      break;
    case '/jobs':
      jobsPage(main, route);
      break;
    case '/audit':
      auditPage(main, route);
      break;
    case '/lifecycle':
      lifecyclePage(main, route);
      break;
    case '/explain':
      explainPage(main, route, { admin: pages.audit, me: session.user });
      break;
    case '/login':
      loginPage(main, (s) => {
        session = s;
        accountBar();
        void refreshPages().then(() => {
          // Only from the login page: someone who went elsewhere meanwhile stays there.
          if (currentRoute().page === '/login') location.hash = '#/';
        });
      });
      break;
    default:
      repositoriesPage(main, route);
  }
}

// "/" focuses the page's search field, as on most code hosts; Escape leaves it.
document.addEventListener('keydown', (e) => {
  const target = e.target as HTMLElement;
  const typing = target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT';
  if (e.key === '/' && !typing) {
    const search = document.querySelector<HTMLInputElement>('input[type=search]');
    if (search) {
      e.preventDefault();
      search.focus();
    }
  } else if (e.key === 'Escape' && typing) {
    target.blur();
  }
});

window.addEventListener('hashchange', () => {
  pagesBar();
  show();
  document.getElementById('main')?.focus({ preventScroll: true });
});

void call<Session>('GET', '/api/v1/session')
  .catch(() => ({ login: false }) as Session)
  .then((s) => {
    session = s;
    setCsrf(s.csrf);
    accountBar();
    return refreshPages();
  })
  .then(show);
