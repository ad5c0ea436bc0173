import { call, setCsrf, type Session } from './api.js';
import { announce, h, replace } from './dom.js';
import { imagePage } from './pages/image.js';
import { loginPage } from './pages/login.js';
import { repositoriesPage } from './pages/repositories.js';
import { repositoryPage } from './pages/repository.js';
import { currentRoute } from './route.js';

let session: Session = { login: false };

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
    case '/login':
      loginPage(main, (s) => {
        session = s;
        accountBar();
        location.hash = '#/';
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
  show();
  document.getElementById('main')?.focus({ preventScroll: true });
});

void call<Session>('GET', '/api/v1/session')
  .catch(() => ({ login: false }) as Session)
  .then((s) => {
    session = s;
    setCsrf(s.csrf);
    accountBar();
    show();
  });
