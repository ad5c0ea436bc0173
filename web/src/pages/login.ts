import { call, setCsrf, type Session } from '../api.js';
import { h, replace } from '../dom.js';

/** Signs in with a registry user or robot (`robot$name` and its token) through the registry's token service. */
export function loginPage(main: HTMLElement, done: (s: Session) => void): void {
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'login' },
    h('label', { for: 'login-user' }, 'User name'),
    user,
    h('label', { for: 'login-password' }, 'Password or robot token'),
    pass,
    submit,
    error,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    call<Session>('POST', '/api/v1/session', { username: user.value, password: pass.value }).then(
      (s) => {
        setCsrf(s.csrf);
        done(s);
      },
      (err: Error) => {
        submit.disabled = false;
        error.textContent = err.message;
        pass.focus();
      },
    );
  });
  replace(main, h('h1', {}, 'Sign in'), form);
  user.focus();
}
