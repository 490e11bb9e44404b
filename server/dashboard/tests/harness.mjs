// The browser tests' harness: a real `weldguard-server` (debug build) on loopback with a fresh
// SQLite folder, its world built by `wg-dash-world` (places, sites, warnings, a permit, monitor and
// welder codes), Debian's chromium driven by playwright-core, and small helpers for the API and
// the page. scripts/browser.sh sets WG_PLAYWRIGHT, WG_SERVER_BIN, WG_WORLD_BIN, WG_BROWSER_SHOTS.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);
const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through scripts/browser.sh`);
  return value;
};

export const SHOTS = process.env.WG_BROWSER_SHOTS || '';

function keyValues(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

function run(bin, args) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 120000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${bin} ${args[0]}: ${error.message}\n${stderr}`));
      else resolve(keyValues(stdout));
    });
  });
}

/** A server with its world. `stop()` ends the server and removes its folder. */
export async function startWorld({ serverArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wg-dash-'));
  const adminToken = `dash-admin-${randomBytes(12).toString('hex')}`;
  const child = spawn(need('WG_SERVER_BIN'), [
    '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--admin-token', adminToken,
    '--token-ttl', '3600', ...serverArgs,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WELDGUARD_LOG: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${stderr}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}): ${stderr}`)); });
  });
  const world = await run(need('WG_WORLD_BIN'), ['setup', '--server', url, '--admin-token', adminToken]);
  return {
    url,
    adminToken,
    world,
    raise: (machine) => run(need('WG_WORLD_BIN'), ['raise', '--server', url, '--admin-token', adminToken, ...(machine ? ['--machine', machine] : [])]),
    /** An admin call to the API; {status, body}. */
    api: async (path, init = {}) => {
      const response = await fetch(`${url}${path}`, {
        ...init, headers: { Authorization: `Bearer ${adminToken}`, ...(init.headers || {}) },
      });
      const text = await response.text();
      let body = text;
      try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
      return { status: response.status, headers: response.headers, body };
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.on('exit', resolve); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's chromium, headless. `hosts`: extra host names mapped to 127.0.0.1. */
export async function launchBrowser({ hosts = [] } = {}) {
  const { chromium } = require(need('WG_PLAYWRIGHT'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];
  if (hosts.length) args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`);
  return chromium.launch({ executablePath: '/usr/bin/chromium', args });
}

/** A fresh context (own IndexedDB) and page; errors on the page are collected. */
export async function openPage(browser, { width = 1366, height = 768, locale = 'zh-CN' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale, timezoneId: 'Asia/Shanghai', deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  return { context, page };
}

/** Sign in by typing the code into the form; waits for the overview. */
export async function signIn(page, url, code) {
  await page.goto(`${url}/dashboard/`);
  await page.locator('#code').fill(code);
  await page.locator('#signin-submit').click();
  await page.locator('#who').waitFor();
}

/** Whether the page scrolls sideways (a layout wider than the window). */
export async function overflowsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth
    || document.body.scrollWidth > document.documentElement.clientWidth);
}

/** The visible controls smaller than 44×44 CSS pixels (touch targets). */
export async function smallTargets(page) {
  return page.evaluate(() => [...document.querySelectorAll('button, select, input, textarea, a:not(.marker), summary, .marker .hit')]
    .filter((el) => el.offsetParent !== null || el instanceof SVGElement)
    .map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && (r.width < 43.5 || r.height < 43.5))
    .map(({ el, r }) => `${el.tagName}#${el.id}.${el.getAttribute('class') || ''} ${Math.round(r.width)}x${Math.round(r.height)}`));
}

export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}
