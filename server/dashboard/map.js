// The overview's map: the scope's sites drawn as SVG from their WGS-84 coordinates (1e-7°) in Web
// Mercator, fitted to the sites' bounding box; each site a marker coloured by its open warnings
// (none / some / severe), with a 44 px touch target, linking to its page. When the deployment has
// a tile server (`--dashboard-tiles`), its tiles are laid underneath at the zoom that fits.

import { s } from './dom.js';
import { kindIsSevere, t } from './i18n.js';

const TILE = 256;
const MAX_LAT = 85.05112878;

/** Web Mercator at zoom 0, in tile pixels (0…256). */
export function project(latE7, lonE7) {
  const lat = Math.max(-MAX_LAT, Math.min(MAX_LAT, latE7 / 1e7));
  const lon = lonE7 / 1e7;
  const sin = Math.sin((lat * Math.PI) / 180);
  return {
    x: ((lon + 180) / 360) * TILE,
    y: (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * TILE,
  };
}

/** none / some / severe, from a site's open warnings by kind. */
export function siteLevel(site) {
  const open = Number(site.open_warnings) || 0;
  if (open === 0) return 'none';
  const byKind = site.open_by_kind || {};
  const severe = Object.entries(byKind).some(([kind, n]) => n > 0 && kindIsSevere(kind));
  return severe || open >= 5 ? 'severe' : 'some';
}

/**
 * Fit the sites into a `width`×`height` view: {scale, left, top} so that a zoom-0 point p is drawn
 * at ((p.x − left)·scale, (p.y − top)·scale). With tiles the scale is a power of two (a zoom).
 */
export function fit(points, width, height, withTiles) {
  const pad = 48;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  // A single site (or sites on one spot) is shown at about 5 km across.
  const spanX = Math.max(maxX - minX, 0.01);
  const spanY = Math.max(maxY - minY, 0.01);
  let scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  if (withTiles) scale = 2 ** Math.max(0, Math.min(18, Math.floor(Math.log2(scale))));
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  return { scale, left: cx - width / 2 / scale, top: cy - height / 2 / scale };
}

function tiles(view, width, height, template) {
  const zoom = Math.round(Math.log2(view.scale));
  const n = 2 ** zoom;
  const x0 = Math.floor((view.left * view.scale) / TILE);
  const y0 = Math.floor((view.top * view.scale) / TILE);
  const x1 = Math.floor(((view.left * view.scale) + width) / TILE);
  const y1 = Math.floor(((view.top * view.scale) + height) / TILE);
  const out = [];
  for (let x = x0; x <= x1; x += 1) {
    for (let y = Math.max(0, y0); y <= Math.min(n - 1, y1); y += 1) {
      const wx = ((x % n) + n) % n;
      const href = template.replace('{z}', zoom).replace('{x}', wx).replace('{y}', y);
      out.push(s('image', {
        href, x: x * TILE - view.left * view.scale, y: y * TILE - view.top * view.scale,
        width: TILE, height: TILE, class: 'tile', preserveAspectRatio: 'none',
      }));
    }
  }
  return out;
}

/**
 * The map of `sites` as an SVG element `drawWidth` CSS pixels wide; `open(site)` is called when a
 * marker is chosen.
 */
export function siteMap(sites, tileTemplate, open, drawWidth = 800) {
  // Drawn at the width it is shown at, so one unit is one CSS pixel (touch targets stay 44 px).
  const width = Math.max(280, Math.round(drawWidth));
  const height = Math.round(Math.min(Math.max(width * 0.62, 260), 560));
  const placed = sites.filter((x) => Number.isFinite(x.lat_e7) && Number.isFinite(x.lon_e7));
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'map', role: 'img',
    'aria-label': t('map.label', { n: placed.length }), 'data-sites': placed.length,
  });
  svg.append(s('rect', { x: 0, y: 0, width, height, class: 'map-sea' }));
  if (placed.length === 0) {
    svg.append(s('text', { x: width / 2, y: height / 2, class: 'map-empty', 'text-anchor': 'middle' }, t('map.empty')));
    return svg;
  }
  const points = placed.map((site) => project(site.lat_e7, site.lon_e7));
  const view = fit(points, width, height, Boolean(tileTemplate));
  if (tileTemplate) svg.append(s('g', { class: 'tiles' }, tiles(view, width, height, tileTemplate)));
  else svg.append(grid(width, height));
  const labels = placed.length <= 40;
  // Severe sites last, so they are drawn on top.
  const order = { none: 0, some: 1, severe: 2 };
  const items = placed.map((site, i) => ({ site, p: points[i], level: siteLevel(site) }))
    .sort((a, b) => order[a.level] - order[b.level]);
  for (const { site, p, level } of items) {
    const x = (p.x - view.left) * view.scale;
    const y = (p.y - view.top) * view.scale;
    const name = `${site.name} · ${t('common.open_warnings')} ${site.open_warnings || 0}`;
    const marker = s('a', {
      href: `#/site/${encodeURIComponent(site.id)}`, class: `marker ${level}`,
      'data-site-id': site.id, 'data-level': level, 'aria-label': name,
      onclick: (e) => { e.preventDefault(); open(site); },
    },
    s('title', {}, name),
    s('circle', { cx: x, cy: y, r: 22, class: 'hit' }),
    s('circle', { cx: x, cy: y, r: 10, class: 'dot' }),
    site.open_warnings ? s('text', { x, y: y + 4, class: 'count', 'text-anchor': 'middle' }, String(site.open_warnings)) : null,
    labels ? s('text', {
      x: x > width * 0.6 ? x - 14 : x + 14, y: y - 12, class: 'site-name',
      'text-anchor': x > width * 0.6 ? 'end' : 'start',
    }, site.name) : null);
    svg.append(marker);
  }
  return svg;
}

function grid(width, height) {
  const g = s('g', { class: 'grid' });
  for (let x = 0; x <= width; x += 80) g.append(s('line', { x1: x, y1: 0, x2: x, y2: height }));
  for (let y = 0; y <= height; y += 80) g.append(s('line', { x1: 0, y1: y, x2: width, y2: y }));
  return g;
}
