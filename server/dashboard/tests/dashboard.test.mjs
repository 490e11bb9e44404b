// The web dashboard in headless Chromium against the real server (scripts/browser.sh runs these):
// each test starts its own `weldguard-server` with a fresh SQLite folder and world (wg-dash-world:
// two districts, warnings, a permit, monitor and welder codes) and signs in as a monitor, through
// the page's own WebCrypto key.

import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  launchBrowser, openPage, overflowsSideways, shot, signIn, smallTargets, startWorld,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser({ hosts: ['dashboard.intranet.test'] }); });
after(async () => { await browser?.close(); });

/** Run `body(world)` against a fresh server; stop it whatever happens. */
async function withWorld(body, options = {}) {
  const world = await startWorld(options);
  try {
    await body(world);
  } finally {
    await world.stop();
  }
}

const ids = (text) => text.split(',').filter(Boolean).sort();

test('a district monitor signs in with its code and the map shows exactly its district\'s sites', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser);
  await signIn(page, w.url, w.world['code.district']);
  assert.match(await page.locator('#who').innerText(), /肥城市应急管理局/);
  await page.locator('svg.map .marker').first().waitFor();
  const shown = await page.locator('svg.map .marker').evaluateAll((els) => els.map((e) => e.dataset.siteId).sort());
  assert.deepEqual(shown, ids(w.world['sites.district']));
  for (const other of ids(w.world['sites.other'])) assert.ok(!shown.includes(other), other);
  // The site with an open expired-licence refusal is severe; the one with a far scan has some;
  // the third has none.
  const levels = Object.fromEntries(await page.locator('svg.map .marker')
    .evaluateAll((els) => els.map((e) => [e.dataset.siteId, e.dataset.level])));
  assert.deepEqual(levels, { 'site-370983-001': 'severe', 'S-FC-2': 'some', 'S-FC-3': 'none' });
  // Today's figures are the district's /v1/stats of the China day.
  const today = new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10);
  assert.equal(await page.locator('.figures').getAttribute('data-day'), today);
  const stats = await w.api(`/v1/stats?from=${today}&until=${today}&district=370983`);
  const allowed = stats.body.days[0].places.reduce((n, p) => n + p.starts_allowed, 0);
  const refused = stats.body.days[0].places.reduce((n, p) => n + p.starts_refused, 0);
  const figures = await page.locator('.figures .figure .value').allInnerTexts();
  assert.deepEqual(figures.slice(0, 2).map((v) => Number(v.replace(/\D/g, ''))), [allowed, refused]);
  // The warning list shows this district's warnings only.
  const machines = await page.locator('.warnings .warning').evaluateAll((els) => els.map((e) => e.innerText));
  assert.ok(machines.length >= 2);
  assert.ok(machines.every((text) => !text.includes('TS-M-')), machines.join('\n'));
  // The warnings CSV is fetched with the token and saved: this district's warnings only.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#csv-warnings').click()]);
  assert.match(download.suggestedFilename(), /^warnings-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = await readFile(await download.path(), 'utf8');
  assert.ok(csv.startsWith('\ufeff'), 'a BOM for Excel');
  assert.ok(csv.includes('M-370983-0001') && csv.includes('FC-M-2'), csv);
  assert.ok(!csv.includes('TS-M-'), csv);
  // A marker leads to its site's page.
  await page.locator('svg.map .marker[data-site-id="S-FC-3"] .hit').click();
  await page.waitForURL(/#\/site\/S-FC-3$/);
  await page.locator('.detail-body .facts').waitFor();
  assert.match(await page.locator('.detail-body').innerText(), /肥城高新区钢结构厂房/);
  assert.deepEqual(page.problems, []);
  await context.close();
}));

test('a warning pushed while the page is open arrives live; it is acknowledged, then closed with a note', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser);
  await signIn(page, w.url, w.world['code.district']);
  await page.locator('#live[data-live="true"]').waitFor({ timeout: 15000 });
  // One in the other district first (must never arrive here), then one in this district.
  const elsewhere = await w.raise('TS-M-1');
  const raised = await w.raise();
  const item = page.locator(`.warnings .warning[data-warning-id="${raised.warning_id}"]`);
  await item.waitFor({ timeout: 15000 });
  assert.equal(await item.getAttribute('data-state'), 'open');
  assert.equal(await page.locator(`[data-warning-id="${elsewhere.warning_id}"]`).count(), 0);
  assert.match(await page.locator('.toast').first().innerText(), /新预警/);

  await item.locator('button.act-ack').click();
  await page.locator(`.warnings .warning[data-warning-id="${raised.warning_id}"][data-state="acknowledged"]`).waitFor();
  let stored = await w.api(`/v1/warnings/${raised.warning_id}`);
  assert.equal(stored.body.state, 'acknowledged');
  assert.match(stored.body.acknowledged_by, /肥城市应急管理局/);

  await page.locator(`.warnings .warning[data-warning-id="${raised.warning_id}"] button.act-close`).click();
  const dialog = page.locator('#close-dialog');
  await dialog.waitFor();
  // An empty note is not sent.
  await page.locator('#close-submit').click();
  assert.match(await dialog.innerText(), /请填写处理说明/);
  const note = '已核实：焊工证已过期，责令停止作业并重新培训。';
  await page.locator('#close-note').fill(note);
  await page.locator('#close-submit').click();
  await page.locator(`.warnings .warning[data-warning-id="${raised.warning_id}"][data-state="closed"]`).waitFor();
  assert.match(await page.locator(`[data-warning-id="${raised.warning_id}"]`).innerText(), /责令停止作业/);
  stored = await w.api(`/v1/warnings/${raised.warning_id}`);
  assert.equal(stored.body.state, 'closed');
  assert.equal(stored.body.close_note, note);
  // The other district's warning is untouched.
  assert.equal((await w.api(`/v1/warnings/${elsewhere.warning_id}`)).body.state, 'open');
  assert.deepEqual(page.problems, []);
  await context.close();
}));

test('the permit page shows its checklist with answers and who signed what', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser);
  // Signed in through the link `weldguard demo --dashboard` prints: the code in the fragment.
  await page.goto(`${w.url}/dashboard/#code=${w.world['code.district']}`);
  await page.locator('#who').waitFor();
  assert.ok(!page.url().includes('code='), page.url());
  await page.goto(`${w.url}/dashboard/#/permit/${w.world['permit.id']}`);
  const signatures = page.locator('table.signatures tbody tr');
  await signatures.first().waitFor();
  const signed = await signatures.evaluateAll((rows) => rows.map((r) => r.innerText));
  for (const pair of w.world['permit.signers'].split(',')) {
    const [person, role] = pair.split(':');
    assert.ok(signed.some((row) => row.includes(person) && row.includes(role)), `${pair} in\n${signed.join('\n')}`);
  }
  const checklist = await page.locator('table.checklist tbody tr').count();
  assert.ok(checklist >= 10, `checklist rows: ${checklist}`);
  assert.ok(await page.locator('table.steps tbody tr').count() >= 3);
  await shot(page, 'permit-zh-1366x768');
  // Another district's monitor is told it does not exist.
  const { page: other, context: otherContext } = await openPage(browser);
  await signIn(other, w.url, w.world['code.other']);
  await other.goto(`${w.url}/dashboard/#/permit/${w.world['permit.id']}`);
  await other.locator('.error[data-code="platform.unknown"]').waitFor();
  assert.deepEqual(page.problems, []);
  await otherContext.close();
  await context.close();
}));

test('the language switch changes the texts to English and back', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser, { locale: 'zh-CN' });
  await signIn(page, w.url, w.world['code.district']);
  await page.locator('.warnings .warning').first().waitFor();
  assert.equal(await page.locator('#nav-overview').innerText(), '总览');
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  await page.locator('#lang').click();
  await page.locator('.warnings .warning').first().waitFor();
  assert.equal(await page.locator('#nav-overview').innerText(), 'Overview');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  const text = await page.locator('body').innerText();
  for (const english of ['Sites', 'Today', 'Warnings', 'Scan-starts', 'Start refused: licence expired', 'Sign out']) {
    assert.ok(text.includes(english), english);
  }
  // No Chinese is left in the page's own texts (the account's name is Chinese, and the switch
  // names the other language in it).
  const own = await page.locator('nav a, h2, .figure .label, .filters, .actions, .legend, #signout').allInnerTexts();
  assert.ok(own.every((s) => !/[\u4e00-\u9fff]/.test(s)), own.join(' | '));
  assert.equal(await page.locator('#lang').innerText(), '中文');
  // Times stay China time in English too.
  await page.locator('#lang').click();
  await page.locator('.warnings .warning').first().waitFor();
  assert.equal(await page.locator('#nav-overview').innerText(), '总览');
  // The choice is kept across a reload.
  await page.locator('#lang').click();
  await page.reload();
  await page.locator('#who').waitFor();
  assert.equal(await page.locator('#nav-overview').innerText(), 'Overview');
  assert.deepEqual(page.problems, []);
  await context.close();
}));

test('a welder\'s phone code is refused with a clear message and leaves no account', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser);
  await page.goto(`${w.url}/dashboard/`);
  await page.locator('#code').fill(w.world['code.welder']);
  await page.locator('#signin-submit').click();
  const refusal = page.locator('.signin-message [data-code="dashboard.phone_role"]');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /手机账号（焊工）/);
  await page.reload();
  await page.locator('#code').waitFor();
  assert.equal(await page.locator('#who').count(), 0);
  // A wrong code: the API's code and message.
  await page.locator('#code').fill('0000000000DEADBEEF00');
  await page.locator('#signin-submit').click();
  await page.locator('.signin-message .error[data-code="auth.bad_enrolment_code"]').waitFor();
  assert.deepEqual(page.problems, []);
  await context.close();
}));

test('a fresh page load signs in again with the stored key; signing out forgets it', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser);
  await signIn(page, w.url, w.world['code.district']);
  const refreshes = [];
  page.on('request', (r) => { if (r.url().endsWith('/v1/auth/refresh')) refreshes.push(r.url()); });
  await page.reload();
  await page.locator('#who').waitFor();
  await page.locator('.warnings .warning').first().waitFor();
  assert.equal(refreshes.length, 1);
  // The key cannot be read out of the browser.
  const extractable = await page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('weldguard-dashboard', 1);
    open.onsuccess = () => {
      const get = open.result.transaction('account').objectStore('account').get('current');
      get.onsuccess = () => resolve([get.result.privateKey.extractable, get.result.privateKey.algorithm.namedCurve]);
      get.onerror = () => reject(get.error);
    };
    open.onerror = () => reject(open.error);
  }));
  assert.deepEqual(extractable, [false, 'P-256']);
  // A second tab of the same browser refreshes the key's token, which retires this tab's: its
  // next call is answered auth.token_expired, and it refreshes once and carries on.
  const second = await context.newPage();
  await second.goto(`${w.url}/dashboard/`);
  await second.locator('#who').waitFor();
  const before = refreshes.length;
  const [listed] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/v1/warnings?') && r.url().includes('state=open') && r.status() === 200),
    page.locator('#filter-state').selectOption('open'),
  ]);
  assert.ok(listed.ok());
  await page.locator('.warnings .warning[data-state="open"]').first().waitFor();
  assert.equal(refreshes.length, before + 1);
  assert.equal(await page.locator('.error').count(), 0);
  await second.close();
  await page.locator('#signout').click();
  await page.locator('#code').waitFor();
  await page.reload();
  await page.locator('#code').waitFor();
  assert.equal(await page.locator('#who').count(), 0);
  assert.deepEqual(page.problems, []);
  await context.close();
}));

test('without a secure context the page says it must be served over HTTPS', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser, { locale: 'en-GB' });
  const port = new URL(w.url).port;
  await page.goto(`http://dashboard.intranet.test:${port}/dashboard/`);
  await page.locator('#insecure').waitFor();
  assert.match(await page.locator('#insecure').innerText(), /HTTPS/);
  assert.equal(await page.locator('#code').count(), 0);
  await context.close();
}));

test('the pages are served with their types, a strict policy and validators', () => withWorld(async (w) => {
  const index = await fetch(`${w.url}/dashboard/`);
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = index.headers.get('content-security-policy');
  for (const part of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(part), `${part} in ${csp}`);
  }
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  const js = await fetch(`${w.url}/dashboard/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const etag = js.headers.get('etag');
  const again = await fetch(`${w.url}/dashboard/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${w.url}/dashboard/app.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
  assert.equal((await fetch(`${w.url}/dashboard/nothing.js`)).status, 404);
  assert.equal((await fetch(`${w.url}/dashboard/tests/harness.mjs`)).status, 404);
  const root = await fetch(`${w.url}/`, { redirect: 'manual' });
  assert.equal(root.headers.get('location'), '/dashboard/');
  const config = await (await fetch(`${w.url}/dashboard/config.json`)).json();
  assert.equal(config.tiles, null);
}));

test('usable at 1366×768 and on tablets: no sideways scrolling, 44 px targets; screenshots', () => withWorld(async (w) => {
  const sizes = [
    ['1366x768', 1366, 768, 'zh-CN'], ['1366x768', 1366, 768, 'en-GB'],
    ['768x1024', 768, 1024, 'zh-CN'], ['1024x768', 1024, 768, 'en-GB'],
  ];
  const codes = [w.world['code.district'], w.world['code.district2'], w.world['code.city'], w.world['code.other']];
  for (const [i, [name, width, height, locale]] of sizes.entries()) {
    const { page, context } = await openPage(browser, { width, height, locale });
    await signIn(page, w.url, codes[i]);
    await page.locator('.warnings .warning').first().waitFor();
    await page.locator('svg.map .marker').first().waitFor();
    await page.locator('.figures').waitFor();
    const lang = locale.startsWith('zh') ? 'zh' : 'en';
    assert.equal(await overflowsSideways(page), false, `overview ${name} ${lang}`);
    assert.deepEqual(await smallTargets(page), [], `overview ${name} ${lang}`);
    await shot(page, `overview-${lang}-${name}`);
    await page.goto(`${w.url}/dashboard/#/charts`);
    await page.locator('svg.chart').first().waitFor();
    assert.equal(await overflowsSideways(page), false, `charts ${name}`);
    assert.deepEqual(await smallTargets(page), [], `charts ${name}`);
    if (i === 0 || i === 3) await shot(page, `charts-${lang}-${name}`);
    await page.goto(`${w.url}/dashboard/#/permit/${w.world['permit.id']}`);
    await page.locator('.detail-body .facts, .detail-body .error').first().waitFor();
    assert.equal(await overflowsSideways(page), false, `permit ${name}`);
    assert.deepEqual(await smallTargets(page), [], `permit ${name}`);
    assert.deepEqual(page.problems, []);
    await context.close();
  }
}));

test('with a tile server configured, the map lays its tiles under the sites, allowed by the policy', async () => {
  // A deployment's tile server on another origin: a 1×1 PNG for every tile, each request noted.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  const asked = [];
  const tiles = createServer((request, response) => {
    asked.push(request.url);
    response.writeHead(200, { 'Content-Type': 'image/png' });
    response.end(png);
  });
  await new Promise((resolve) => { tiles.listen(0, '127.0.0.1', resolve); });
  const origin = `http://127.0.0.1:${tiles.address().port}`;
  try {
    await withWorld(async (w) => {
      const index = await fetch(`${w.url}/dashboard/`);
      assert.ok(index.headers.get('content-security-policy').includes(`img-src 'self' data: ${origin};`));
      assert.equal((await (await fetch(`${w.url}/dashboard/config.json`)).json()).tiles, `${origin}/{z}/{x}/{y}.png`);
      const { page, context } = await openPage(browser);
      await signIn(page, w.url, w.world['code.district']);
      await page.locator('svg.map image.tile').first().waitFor({ state: 'attached' });
      await page.locator('svg.map .marker').first().waitFor();
      const hrefs = await page.locator('svg.map image.tile').evaluateAll((els) => els.map((e) => e.getAttribute('href')));
      assert.ok(hrefs.every((h) => /^http:\/\/127\.0\.0\.1:\d+\/\d+\/\d+\/\d+\.png$/.test(h)), hrefs.join(' '));
      await page.waitForFunction((n) => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.png')).length >= n, hrefs.length);
      assert.ok(asked.length >= hrefs.length, `${asked.length} tiles fetched of ${hrefs.length}`);
      // One zoom for every tile, chosen so the district's sites fit.
      const zooms = new Set(asked.map((u) => u.split('/')[1]));
      assert.equal(zooms.size, 1);
      assert.ok(Number([...zooms][0]) >= 8, [...zooms].join());
      assert.deepEqual(page.problems, []);
      await context.close();
    }, { serverArgs: ['--dashboard-tiles', `${origin}/{z}/{x}/{y}.png`] });
  } finally {
    tiles.close();
  }
});

test('when the server goes away the page says so with the error code, and nothing breaks', () => withWorld(async (w) => {
  const { page, context } = await openPage(browser, { locale: 'en-GB' });
  await signIn(page, w.url, w.world['code.district']);
  await page.locator('#live[data-live="true"]').waitFor({ timeout: 15000 });
  await w.stop();
  await page.locator('#live[data-live="false"]').waitFor({ timeout: 15000 });
  await page.locator('#nav-charts').click();
  const error = page.locator('.error[data-code="network"]');
  await error.waitFor();
  assert.match(await error.innerText(), /cannot be reached/);
  assert.match(await error.innerText(), /network/);
  // Still a working page: the language switch and the navigation answer.
  await page.locator('#lang').click();
  await page.locator('.error[data-code="network"]').waitFor();
  assert.match(await page.locator('.error[data-code="network"]').innerText(), /无法连接/);
  // The browser logs the cut connections; the page's own code threw nothing.
  assert.deepEqual(page.problems.filter((p) => p.startsWith('pageerror')), []);
  await context.close();
}));
