// The 30-day charts, drawn as SVG from GET /v1/stats (figures per China day and place, summed
// over places here): bars per day, one or two series stacked, with a value axis and day labels.

import { h, s } from './dom.js';
import { formatNumber, shortDay, t } from './i18n.js';

/** One number per day: the sum over places of `pick(placeFigures)`. */
export function series(stats, pick) {
  return stats.days.map((day) => day.places.reduce((n, place) => n + (Number(pick(place)) || 0), 0));
}

/** The top of the value axis: four whole steps of 1, 2 or 5 × 10^k covering `n`. */
function niceMax(n) {
  const rough = Math.max(1, n / 4);
  const p = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= rough);
  return step * 4;
}

/**
 * A bar chart: `layers` = [{name, values, cls}] stacked bottom up, one bar per day of `days`.
 */
export function barChart(title, days, layers) {
  const width = 640;
  const height = 220;
  const left = 44;
  const bottom = 28;
  const top = 12;
  const totals = days.map((_, i) => layers.reduce((n, l) => n + l.values[i], 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotH = height - top - bottom;
  const step = (width - left - 8) / Math.max(1, days.length);
  const barW = Math.max(2, step * 0.7);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title });
  for (let k = 0; k <= 4; k += 1) {
    const v = (max * k) / 4;
    const y = top + plotH - (plotH * k) / 4;
    svg.append(s('line', { x1: left, y1: y, x2: width - 4, y2: y, class: 'axis' }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, formatNumber(v)));
  }
  days.forEach((day, i) => {
    let base = top + plotH;
    const x = left + i * step + (step - barW) / 2;
    for (const layer of layers) {
      const v = layer.values[i];
      if (v > 0) {
        const bh = (plotH * v) / max;
        base -= bh;
        svg.append(s('rect', { x, y: base, width: barW, height: bh, class: `bar ${layer.cls}` },
          s('title', {}, `${day} ${layer.name}: ${formatNumber(v)}`)));
      }
    }
    if (i % 5 === 0 || i === days.length - 1) {
      const last = i === days.length - 1;
      svg.append(s('text', {
        x: last ? x + barW : x + barW / 2, y: height - 8, 'text-anchor': last ? 'end' : 'middle', class: 'tick',
      }, shortDay(day)));
    }
  });
  const legend = layers.length > 1
    ? h('p', { class: 'legend' }, layers.map((l) => h('span', { class: `key ${l.cls}` }, l.name)))
    : null;
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg, legend);
}

/** The four charts of the 30-day page. */
export function charts(stats) {
  const days = stats.days.map((d) => d.day);
  return [
    barChart(t('charts.starts'), days, [
      { name: t('charts.allowed'), values: series(stats, (p) => p.starts_allowed), cls: 'allowed' },
      { name: t('charts.refused'), values: series(stats, (p) => p.starts_refused), cls: 'refused' },
    ]),
    barChart(t('charts.warnings'), days, [
      { name: t('charts.warnings'), values: series(stats, (p) => p.warnings_open), cls: 'warning' },
    ]),
    barChart(t('charts.inspections'), days, [
      { name: t('charts.inspections'), values: series(stats, (p) => p.inspections), cls: 'inspection' },
    ]),
    barChart(t('charts.permits'), days, [
      { name: t('charts.permits'), values: series(stats, (p) => Object.values(p.permits || {}).reduce((a, b) => a + b, 0)), cls: 'permit' },
    ]),
  ];
}
