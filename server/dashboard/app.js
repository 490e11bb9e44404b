// The dashboard's entry: language, sign-in (a stored key refreshes the token; a code from the form
// or from the URL fragment `#code=…` enrols a new key), the header, hash routing between the
// screens of views.js, the close-note dialog, and the live warning stream feeding the open list.

import { forgetAccount, enrol, refresh, secureContextOk, storedAccount } from './auth.js';
import { Session, followWarnings } from './api.js';
import { h, put } from './dom.js';
import { initialLang, kindLabel, roleLabel, setLang, lang, t } from './i18n.js';
import {
  chartsPage, errorBox, machinePage, overview, permitPage, signInPage, sitePage, welderPage,
} from './views.js';

const header = document.getElementById('header');
const main = document.getElementById('main');
const toasts = document.getElementById('toasts');

const ctx = {
  session: null,
  config: { tiles: null },
  filters: { kind: '', state: '' },
  seenKinds: new Set(),
  /** Site names by id, from the map's list (the warnings name their site by id). */
  siteNames: new Map(),
  liveList: null,
  live: false,
  stopStream: null,
  signInMessage: '',
  refreshFigures: () => {},
  route: () => route(),
  liveBadge: () => h('span', { class: `live ${ctx.live ? 'on' : 'off'}`, id: 'live', 'data-live': String(ctx.live) },
    ctx.live ? t('warn.live_on') : t('warn.live_off')),
  closeDialog: (w, done) => closeDialog(w, done),
};

function renderHeader() {
  const account = ctx.session?.account;
  put(header,
    h('div', { class: 'brand' },
      h('img', { src: 'favicon.svg', alt: '', width: 32, height: 32 }),
      h('div', {}, h('h1', {}, t('app.title')), h('p', { class: 'subtitle' }, t('app.subtitle')))),
    h('nav', { 'aria-label': t('app.title') },
      account ? [
        h('a', { href: '#/', id: 'nav-overview' }, t('nav.overview')),
        h('a', { href: '#/charts', id: 'nav-charts' }, t('nav.charts')),
      ] : null,
      h('button', {
        type: 'button', id: 'lang', class: 'secondary', title: t('nav.lang_title'),
        onclick: () => { setLang(lang() === 'zh' ? 'en' : 'zh'); renderHeader(); route(); },
      }, t('nav.lang')),
      account ? [
        h('span', { class: 'who', id: 'who' }, t('signin.signed_in_as', { person: account.person, role: roleLabel(account.role) })),
        h('button', { type: 'button', id: 'signout', class: 'secondary', onclick: signOut }, t('nav.signout')),
      ] : null));
}

function setLive(live) {
  ctx.live = live;
  const badge = document.getElementById('live');
  if (badge) badge.replaceWith(ctx.liveBadge());
}

function toast(text) {
  const el = h('div', { class: 'toast', role: 'status' }, text);
  toasts.append(el);
  setTimeout(() => el.remove(), 8000);
}

/** What a warning is about, in a line: its machine, else (a licence raised from the registry) its licence. */
function subjectOf(w) {
  return w.machine_id || w.certificate_no || '';
}

let figuresTimer = null;
function onWarning(w) {
  if (ctx.liveList) ctx.liveList.add(w);
  toast(`${t('warn.new')}: ${kindLabel(w.kind)} · ${subjectOf(w)}`);
  clearTimeout(figuresTimer);
  figuresTimer = setTimeout(() => ctx.refreshFigures(), 500);
}

async function startStream() {
  let last = null;
  try {
    const newest = await ctx.session.get('/v1/warnings?limit=1');
    last = newest.warnings?.[0]?.id ?? '0';
  } catch (_) { last = null; }
  ctx.stopStream = followWarnings(ctx.session, last, onWarning, setLive);
}

function stopStream() {
  if (ctx.stopStream) ctx.stopStream();
  ctx.stopStream = null;
  setLive(false);
}

async function signOut() {
  stopStream();
  ctx.session = null;
  try { await forgetAccount(); } catch (_) { /* nothing stored */ }
  location.hash = '#/';
  renderHeader();
  route();
}

function signedOut(e) {
  stopStream();
  ctx.session = null;
  ctx.signInMessage = e ? `${t('signin.refresh_failed')} (${e.code})` : '';
  forgetAccount().catch(() => {}).finally(() => { renderHeader(); route(); });
}

function begin(account, token) {
  ctx.session = new Session(account, token);
  ctx.siteNames = new Map();
  ctx.seenKinds = new Set();
  ctx.session.onSignedOut = signedOut;
  ctx.signInMessage = '';
  renderHeader();
  startStream();
  route();
}

const dialog = h('dialog', { id: 'close-dialog', class: 'dialog' });
document.body.append(dialog);

function closeDialog(w, done) {
  const note = h('textarea', { id: 'close-note', name: 'note', rows: 4, maxlength: 1000 });
  const problem = h('div', { class: 'dialog-error' });
  const submit = h('button', { type: 'submit', id: 'close-submit' }, t('close.submit'));
  const form = h('form', { method: 'dialog' },
    h('h2', {}, t('close.title')),
    h('p', { class: 'dialog-kind' }, kindLabel(w.kind), ' · ', subjectOf(w)),
    h('label', { for: 'close-note' }, t('close.label')), note, problem,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'close-cancel', onclick: () => dialog.close() }, t('close.cancel')),
      submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = note.value.trim();
    if (!text) { put(problem, t('close.need_note')); return; }
    submit.disabled = true;
    try {
      const updated = await ctx.session.post(`/v1/warnings/${encodeURIComponent(w.id)}/close`, { note: text });
      dialog.close();
      done(updated);
    } catch (err) {
      submit.disabled = false;
      put(problem, errorBox(err));
    }
  });
  put(dialog, form);
  dialog.showModal();
  note.focus();
}

function route() {
  ctx.liveList = null;
  ctx.refreshFigures = () => {};
  if (!ctx.session) {
    signInPage(main, {
      secure: secureContextOk(),
      message: ctx.signInMessage,
      onSubmit: async (code) => {
        const enrolled = await enrol(code);
        begin(enrolled.account, enrolled.token);
      },
    });
    return;
  }
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : '';
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('current', a.getAttribute('href') === `#/${page}`));
  switch (page) {
    case 'charts': chartsPage(ctx, main); break;
    case 'site': sitePage(ctx, main, arg); break;
    case 'machine': machinePage(ctx, main, arg); break;
    case 'welder': welderPage(ctx, main, arg); break;
    case 'permit': permitPage(ctx, main, arg); break;
    default: overview(ctx, main);
  }
  main.focus({ preventScroll: true });
}

async function boot() {
  setLang(initialLang());
  renderHeader();
  try {
    const answer = await fetch('config.json', { cache: 'no-store' });
    if (answer.ok) ctx.config = await answer.json();
  } catch (_) { /* no tiles */ }
  // A code in the fragment (`weldguard demo --dashboard` prints such a link) is taken at once and
  // removed from the address bar and history.
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const code = fragment.get('code');
  if (code) history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  if (!secureContextOk()) { route(); return; }
  if (code) {
    put(main, h('p', { class: 'loading' }, t('signin.working')));
    try {
      await forgetAccount().catch(() => {});
      const enrolled = await enrol(code);
      begin(enrolled.account, enrolled.token);
    } catch (e) {
      ctx.signInMessage = e.code === 'dashboard.phone_role'
        ? h('span', { class: 'error', 'data-code': e.code }, t('signin.phone_role', { role: roleLabel(e.message) }))
        : errorBox(e);
      route();
    }
    return;
  }
  let account = null;
  try { account = await storedAccount(); } catch (_) { account = null; }
  if (!account) { route(); return; }
  put(main, h('p', { class: 'loading' }, t('common.loading')));
  try {
    const fresh = await refresh(account);
    begin(account, fresh.token);
  } catch (e) {
    if (e.code === 'network' || e.code === 'rate.limited') {
      put(main, errorBox(e, () => boot()));
      return;
    }
    await forgetAccount().catch(() => {});
    ctx.signInMessage = `${t('signin.refresh_failed')} (${e.code})`;
    route();
  }
}

window.addEventListener('hashchange', () => { if (!location.hash.startsWith('#code=')) route(); });
boot();
