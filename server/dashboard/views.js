// The dashboard's screens, built from the API's answers: the overview (map, today's figures, the
// warning list with its filters, paging, acknowledge and close, live arrivals), the 30-day charts,
// and the site, machine, welder and permit pages. Each screen is a function of (ctx, main element,
// route arguments) that fills `main`; a failed call shows its error code and message in place.

import { charts } from './charts.js';
import { h, put } from './dom.js';
import {
  actionLabel, chinaDay, errorText, hasText, levelLabel, permitRoleLabel, formatNumber, formatTime, kindLabel, knownKinds, lang, permitStateLabel,
  roleLabel, stateLabel, t,
} from './i18n.js';
import { siteLevel, siteMap } from './map.js';

const enc = encodeURIComponent;

/** An error box: the zh/en message and the API's code. */
export function errorBox(e, retry) {
  const code = e?.code || 'unknown';
  return h('div', { class: 'error', role: 'alert', 'data-code': code },
    h('strong', {}, t('error.title')), ' ',
    h('span', { class: 'error-text' }, errorText(code)), ' ',
    h('span', { class: 'error-code' }, `${t('error.code')}: ${code}`),
    retry ? h('button', { type: 'button', class: 'secondary', onclick: retry }, t('common.retry')) : null);
}

function loading() {
  return h('p', { class: 'loading' }, t('common.loading'));
}

/** Run `load` and put what `render` makes of it into `el`; an error box on failure. */
async function section(el, load, render) {
  put(el, loading());
  try {
    const data = await load();
    put(el, render(data));
  } catch (e) {
    put(el, errorBox(e, () => section(el, load, render)));
  }
}

function link(href, text) {
  return h('a', { href }, text);
}

function placeText(place) {
  if (!place) return t('common.none');
  return [place.district, place.town, place.grid].filter(Boolean).join(' / ');
}

function table(headers, rows, cls = '') {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.length
        ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c ?? t('common.none')))))
        : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, t('common.none'))))));
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? t('common.none'))]));
}

// ---- Warnings -------------------------------------------------------------------------------

function warningTitle(w) {
  return lang() === 'zh' ? (w.title_zh || w.title_en) : (w.title_en || w.title_zh);
}

/** One warning as a list item, with the actions its state allows. */
function warningItem(ctx, w, list) {
  const actions = [];
  if (w.state === 'open') {
    actions.push(h('button', {
      type: 'button', class: 'act-ack',
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          list.replace(await ctx.session.post(`/v1/warnings/${enc(w.id)}/acknowledge`, {}));
        } catch (err) {
          list.showError(err);
        }
      },
    }, t('warn.acknowledge')));
  } else if (w.state === 'acknowledged') {
    actions.push(h('button', {
      type: 'button', class: 'act-close',
      onclick: () => ctx.closeDialog(w, (updated) => list.replace(updated)),
    }, t('warn.close')));
  }
  const facts = [
    [t('warn.machine'), w.machine_id ? link(`#/machine/${enc(w.machine_id)}`, w.machine_id) : null],
    [t('warn.welder'), w.certificate_no ? link(`#/welder/${enc(w.certificate_no)}`, w.certificate_no) : null],
    [t('warn.site'), w.site_id ? link(`#/site/${enc(w.site_id)}`, ctx.siteNames.get(w.site_id) || w.site_id) : null],
    [t('warn.at'), formatTime(w.at_ms)],
  ].filter(([, v]) => v !== null);
  const trail = [];
  if (w.acknowledged_by) trail.push(`${t('warn.ack_by')}: ${w.acknowledged_by} · ${formatTime(w.acknowledged_at_ms)}`);
  if (w.closed_by) trail.push(`${t('warn.closed_by')}: ${w.closed_by} · ${formatTime(w.closed_at_ms)}`);
  if (w.close_note) trail.push(`${t('warn.note')}: ${w.close_note}`);
  return h('li', { class: `warning ${w.state}`, 'data-warning-id': w.id, 'data-kind': w.kind, 'data-state': w.state },
    h('div', { class: 'warning-head' },
      h('span', { class: `kind${knownKinds().includes(w.kind) ? '' : ' unknown'}`, 'data-kind': w.kind }, kindLabel(w.kind)),
      h('span', { class: `state-badge ${w.state}` }, stateLabel(w.state))),
    h('p', { class: 'warning-title' }, warningTitle(w)),
    h('p', { class: 'warning-facts' }, facts.map(([k, v]) => h('span', {}, `${k}: `, v))),
    trail.length ? h('p', { class: 'warning-trail' }, trail.join(' · ')) : null,
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/**
 * The warning list with filters and paging; `extra` narrows it (e.g. a machine's). Returns the
 * element and `add(warning)` for live arrivals.
 */
export function warningList(ctx, { compact = false } = {}) {
  const state = { kind: ctx.filters.kind, state: ctx.filters.state, cursor: '', items: [] };
  const ul = h('ul', { class: 'warnings', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary more', hidden: true }, t('warn.more'));
  const problem = h('div', { class: 'list-error' });
  const kinds = new Set([...knownKinds(), ...ctx.seenKinds]);
  const kindSelect = h('select', { id: 'filter-kind', name: 'kind' },
    h('option', { value: '' }, t('warn.all')),
    [...kinds].map((k) => h('option', { value: k, selected: k === state.kind }, kindLabel(k))));
  const stateSelect = h('select', { id: 'filter-state', name: 'state' },
    h('option', { value: '' }, t('warn.all')),
    ['open', 'acknowledged', 'closed'].map((st) => h('option', { value: st, selected: st === state.state }, stateLabel(st))));

  const query = (after) => {
    const q = new URLSearchParams();
    if (state.kind) q.set('kind', state.kind);
    if (state.state) q.set('state', state.state);
    if (after) q.set('after', after);
    q.set('limit', compact ? '20' : '50');
    return q;
  };
  const render = () => {
    put(ul, state.items.length
      ? state.items.map((w) => warningItem(ctx, w, api))
      : h('li', { class: 'empty' }, t('warn.empty')));
  };
  const load = async (append) => {
    put(problem);
    try {
      const page = await ctx.session.get(`/v1/warnings?${query(append ? state.cursor : '')}`);
      for (const w of page.warnings) ctx.seenKinds.add(w.kind);
      state.items = append ? state.items.concat(page.warnings) : page.warnings;
      state.cursor = page.next_cursor || '';
      more.hidden = !page.has_more;
      render();
    } catch (e) {
      put(problem, errorBox(e, () => load(append)));
    }
  };
  const matches = (w) => (!state.kind || w.kind === state.kind) && (!state.state || w.state === state.state);
  const api = {
    render,
    replace(w) {
      state.items = state.items.map((x) => (x.id === w.id ? w : x));
      render();
      ctx.refreshFigures();
    },
    add(w) {
      ctx.seenKinds.add(w.kind);
      if (!matches(w) || state.items.some((x) => x.id === w.id)) return;
      state.items = [w, ...state.items];
      render();
      const li = ul.querySelector(`[data-warning-id="${CSS.escape(w.id)}"]`);
      if (li) li.classList.add('fresh');
    },
    showError(e) { put(problem, errorBox(e)); },
  };
  kindSelect.addEventListener('change', () => { state.kind = kindSelect.value; ctx.filters.kind = state.kind; load(false); });
  stateSelect.addEventListener('change', () => { state.state = stateSelect.value; ctx.filters.state = state.state; load(false); });
  more.addEventListener('click', () => load(true));
  const csv = h('button', {
    type: 'button', class: 'secondary', id: 'csv-warnings',
    onclick: async () => {
      const q = query('');
      q.delete('limit');
      try { await ctx.session.download(`/v1/warnings.csv?${q}`, `warnings-${chinaDay()}.csv`); } catch (e) { put(problem, errorBox(e)); }
    },
  }, t('warn.csv'));
  const ledger = h('button', {
    type: 'button', class: 'secondary', id: 'csv-ledger',
    onclick: async () => {
      try { await ctx.session.download(`/v1/ledger.csv?day=${chinaDay()}`, `ledger-${chinaDay()}.csv`); } catch (e) { put(problem, errorBox(e)); }
    },
  }, t('ledger.csv'));
  const el = h('div', { class: 'warning-list' },
    h('div', { class: 'filters' },
      h('label', { for: 'filter-kind' }, t('warn.kind'), kindSelect),
      h('label', { for: 'filter-state' }, t('warn.state'), stateSelect)),
    problem, ul, more,
    h('div', { class: 'downloads' }, csv, ledger));
  load(false);
  ctx.liveList = api;
  return el;
}

// ---- Overview -------------------------------------------------------------------------------

function figure(label, value, cls = '') {
  return h('div', { class: `figure ${cls}` }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

function sumPlaces(places) {
  const out = { starts_allowed: 0, starts_refused: 0, inspections: 0, warnings_open: 0, permits: {} };
  for (const p of places || []) {
    out.starts_allowed += p.starts_allowed || 0;
    out.starts_refused += p.starts_refused || 0;
    out.inspections += p.inspections || 0;
    out.warnings_open += p.warnings_open || 0;
    for (const [k, n] of Object.entries(p.permits || {})) out.permits[k] = (out.permits[k] || 0) + n;
  }
  return out;
}

function todayFigures(stats) {
  const today = stats.days.find((d) => d.day === chinaDay()) || { places: [] };
  const day = sumPlaces(today.places);
  const month = sumPlaces(stats.totals);
  const permits = Object.entries(day.permits);
  return h('div', { class: 'figures', 'data-day': chinaDay() },
    figure(t('fig.starts_allowed'), formatNumber(day.starts_allowed)),
    figure(t('fig.starts_refused'), formatNumber(day.starts_refused), day.starts_refused ? 'alert' : ''),
    figure(t('fig.inspections'), formatNumber(day.inspections)),
    figure(t('fig.warnings_open'), formatNumber(day.warnings_open), day.warnings_open ? 'alert' : ''),
    figure(t('fig.warnings_30'), formatNumber(month.warnings_open)),
    h('div', { class: 'figure permits' },
      h('span', { class: 'label' }, t('fig.permits')),
      h('span', { class: 'permit-states' }, permits.length
        ? permits.map(([k, n]) => h('span', { class: 'permit-state' }, `${permitStateLabel(k)} ${formatNumber(n)}`))
        : t('fig.none'))));
}

function statsWindow(days) {
  return `/v1/stats?from=${chinaDay(Date.now(), -(days - 1))}&until=${chinaDay()}`;
}

function siteList(sites) {
  return table([t('common.name'), t('common.district'), t('common.town'), t('common.open_warnings')],
    sites.map((x) => [
      link(`#/site/${enc(x.id)}`, x.name),
      x.district, x.town, h('span', { class: `level ${siteLevel(x)}` }, String(x.open_warnings || 0)),
    ]), 'sites');
}

export function overview(ctx, main) {
  const mapBox = h('div', { class: 'map-box' });
  const listBox = h('div', { class: 'site-list' });
  const figBox = h('div', { class: 'fig-box' });
  const legend = h('p', { class: 'legend' },
    ['none', 'some', 'severe'].map((l) => h('span', { class: `key ${l}` }, t(`map.${l}`))));
  put(main,
    h('div', { class: 'overview' },
      h('section', { class: 'panel map-panel', 'aria-labelledby': 'h-map' },
        h('h2', { id: 'h-map' }, t('overview.map')), mapBox, legend,
        h('details', { class: 'sites-details', open: true }, h('summary', {}, t('overview.sites')), listBox)),
      h('section', { class: 'panel today-panel', 'aria-labelledby': 'h-today' },
        h('h2', { id: 'h-today' }, t('overview.today')), figBox),
      h('section', { class: 'panel warnings-panel', 'aria-labelledby': 'h-warnings' },
        h('h2', { id: 'h-warnings' }, t('overview.warnings'), ' ', ctx.liveBadge()),
        warningList(ctx))));
  let sites = null;
  const draw = () => siteMap(sites || [], ctx.config.tiles, (site) => { location.hash = `#/site/${enc(site.id)}`; },
    mapBox.clientWidth || 800);
  const loadSites = () => section(mapBox, () => ctx.session.get('/v1/platform/sites'), (answer) => {
    sites = answer.sites || [];
    for (const site of sites) ctx.siteNames.set(site.id, site.name);
    if (ctx.liveList) ctx.liveList.render();
    put(listBox, siteList(sites));
    return draw();
  });
  // Redrawn at its new width when the window changes size.
  let drawnWidth = 0;
  const resize = new ResizeObserver(() => {
    if (!mapBox.isConnected) { resize.disconnect(); return; }
    if (!sites || Math.abs(mapBox.clientWidth - drawnWidth) < 8) return;
    drawnWidth = mapBox.clientWidth;
    put(mapBox, draw());
  });
  resize.observe(mapBox);
  const loadFigures = () => section(figBox, () => ctx.session.get(statsWindow(30)), todayFigures);
  ctx.refreshFigures = () => { loadSites(); loadFigures(); };
  loadSites();
  loadFigures();
}

export function chartsPage(ctx, main) {
  const box = h('div', { class: 'charts' });
  put(main, h('section', { class: 'panel' }, h('h2', {}, t('charts.title')), box));
  section(box, () => ctx.session.get(statsWindow(30)), (stats) => charts(stats));
}

// ---- Detail pages ---------------------------------------------------------------------------

function startsTable(starts) {
  return table([t('start.time'), t('warn.machine'), t('warn.welder'), t('start.result'), t('start.reasons'), t('start.permit')],
    (starts || []).map((x) => [
      formatTime(x.started_at_ms),
      link(`#/machine/${enc(x.machine_id)}`, x.machine_id),
      link(`#/welder/${enc(x.certificate_no)}`, x.certificate_no),
      h('span', { class: x.allowed ? 'ok' : 'bad' }, x.allowed ? t('start.allowed') : t('start.refused')),
      (x.reason_codes || []).join(', ') || t('common.none'),
      x.permit_id ? link(`#/permit/${enc(x.permit_id)}`, x.permit_id) : null,
    ]), 'starts');
}

function warningsBlock(ctx, warnings) {
  const list = { replace: () => ctx.route(), showError: () => {} };
  return (warnings || []).length
    ? h('ul', { class: 'warnings' }, warnings.map((w) => warningItem(ctx, w, list)))
    : h('p', { class: 'empty' }, t('warn.empty'));
}

function detail(ctx, main, titleKey, id, path, render) {
  const box = h('div', { class: 'detail-body' });
  put(main, h('section', { class: 'panel detail' },
    h('p', {}, link('#/', `← ${t('common.back')}`)),
    h('h2', {}, `${t(titleKey)} `, h('span', { class: 'detail-id' }, id)), box));
  section(box, () => ctx.session.get(path), (answer) => render(answer));
}

export function sitePage(ctx, main, id) {
  detail(ctx, main, 'site.title', id, `/v1/platform/sites/${enc(id)}`, (a) => {
    const site = a.site || {};
    return [
      dl([[t('common.name'), site.name], [t('site.place'), placeText(site)], [t('common.open_warnings'), String(site.open_warnings ?? 0)]]),
      h('h3', {}, t('site.machines')),
      table([t('common.id'), t('machine.status'), t('machine.watch'), t('common.open_warnings')],
        (a.machines || []).map((m) => [link(`#/machine/${enc(m.id)}`, m.id), m.status, m.watch, String(m.open_warnings ?? 0)])),
      h('h3', {}, t('site.warnings')), warningsBlock(ctx, a.warnings),
      h('h3', {}, t('site.permits')),
      table([t('common.id'), t('permit.state'), t('permit.level'), t('permit.updated')],
        (a.permits || []).map((p) => [link(`#/permit/${enc(p.id)}`, p.id), permitStateLabel(p.state), levelLabel(p.level), formatTime(p.updated_at_ms)])),
      h('h3', {}, t('site.starts')), startsTable(a.starts),
    ];
  });
}

export function machinePage(ctx, main, id) {
  detail(ctx, main, 'machine.title', id, `/v1/platform/machines/${enc(id)}`, (a) => {
    const m = a.machine || {};
    return [
      dl([[t('machine.status'), m.status], [t('machine.watch'), m.watch],
        [t('warn.site'), m.site_id ? link(`#/site/${enc(m.site_id)}`, m.site_name || m.site_id) : null],
        [t('site.place'), placeText(m)]]),
      h('h3', {}, t('site.warnings')), warningsBlock(ctx, a.warnings),
      h('h3', {}, t('site.starts')), startsTable(a.starts),
    ];
  });
}

export function welderPage(ctx, main, id) {
  detail(ctx, main, 'welder.title', id, `/v1/platform/welders/${enc(id)}`, (a) => {
    const w = a.welder || {};
    return [
      dl([[t('welder.name'), w.name], [t('welder.kind'), w.kind], [t('welder.expires'), w.expires_on],
        [t('welder.status'), w.status], [t('site.place'), placeText(w)]]),
      h('h3', {}, t('site.warnings')), warningsBlock(ctx, a.warnings),
      h('h3', {}, t('site.starts')), startsTable(a.starts),
    ];
  });
}

function answerText(answer) {
  if (answer === null || answer === undefined) return t('common.none');
  if (answer === true) return t('common.yes');
  if (answer === false) return t('common.no');
  if (typeof answer === 'string' && hasText(`answer.${answer}`)) return t(`answer.${answer}`);
  return typeof answer === 'object' ? JSON.stringify(answer) : String(answer);
}

export function permitPage(ctx, main, id) {
  detail(ctx, main, 'permit.title', id, `/v1/platform/permits/${enc(id)}`, (a) => {
    const p = a.permit || {};
    return [
      dl([[t('permit.state'), permitStateLabel(p.state)], [t('permit.level'), levelLabel(p.level)],
        [t('warn.site'), p.site_id ? link(`#/site/${enc(p.site_id)}`, p.site_name || p.site_id) : null],
        [t('permit.updated'), formatTime(p.updated_at_ms)]]),
      h('h3', {}, t('permit.signatures')),
      table([t('permit.step'), t('permit.person'), t('permit.role'), t('permit.signed_at'), t('permit.present'), t('permit.vouched')],
        (p.signatures || []).map((x) => [actionLabel(x.action || x.step_id), `${x.person} (${x.person_id})`, permitRoleLabel(x.role),
          formatTime(x.signed_at_ms), x.user_present === null || x.user_present === undefined ? null : answerText(x.user_present),
          x.vouched === undefined ? null : answerText(x.vouched)]),
        'signatures'),
      h('h3', {}, t('permit.checklist')),
      table([t('permit.item'), t('permit.answer'), t('permit.note')],
        (p.checklist || []).map((c) => [`${c.number ? `${c.number}. ` : ''}${lang() === 'zh' ? (c.text_zh || c.text_en || c.item_id) : (c.text_en || c.text_zh || c.item_id)}`,
          answerText(c.answer), c.note]), 'checklist'),
      h('h3', {}, t('permit.steps')),
      table([t('permit.step'), t('permit.state'), t('start.time'), t('permit.by')],
        (p.steps || []).map((x) => [actionLabel(x.action), permitStateLabel(x.state), formatTime(x.at_ms), x.by]), 'steps'),
      h('details', { class: 'raw' }, h('summary', {}, t('permit.raw')), h('pre', {}, JSON.stringify(a.raw ?? null, null, 2))),
    ];
  });
}

// ---- Sign-in --------------------------------------------------------------------------------

export function signInPage(main, { secure, message, code, onSubmit }) {
  if (!secure) {
    put(main, h('section', { class: 'panel signin', id: 'insecure' },
      h('h2', {}, t('signin.insecure_title')),
      h('p', { class: 'error', role: 'alert' }, t('signin.insecure'))));
    return;
  }
  const input = h('input', {
    id: 'code', name: 'code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false',
    value: code || '', required: true, maxlength: 100,
  });
  const note = h('div', { class: 'signin-message', role: 'alert' }, message || null);
  const button = h('button', { type: 'submit', id: 'signin-submit' }, t('signin.submit'));
  const form = h('form', { class: 'signin-form' },
    h('label', { for: 'code' }, t('signin.code')), input, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) { put(note, t('signin.no_code')); return; }
    button.disabled = true;
    put(note, t('signin.working'));
    try {
      await onSubmit(value);
    } catch (err) {
      button.disabled = false;
      put(note, err.code === 'dashboard.phone_role'
        ? h('span', { class: 'error', 'data-code': err.code }, t('signin.phone_role', { role: roleLabel(err.message) }))
        : errorBox(err));
    }
  });
  put(main, h('section', { class: 'panel signin' },
    h('h2', {}, t('signin.title')), h('p', {}, t('signin.intro')), form, note));
}
