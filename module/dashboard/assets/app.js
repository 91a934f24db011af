// llm_gateway spend dashboard: a single page, no build step, no library.
// It fetches only relative URLs under its own mount path (api/…), which the
// llm_gateway_dashboard handler answers with the admin API's query
// handlers, and draws its charts as SVG itself. Money arrives as integer
// nano-dollars (cost_nano_usd) and is summed as BigInt, so every figure is
// the API's to the cent (views) or to the nano-dollar (CSV exports).
'use strict';

(function () {
	// ---------- DOM helpers ----------
	const SVGNS = 'http://www.w3.org/2000/svg';

	function h(tag, attrs, ...children) {
		const el = document.createElement(tag);
		setAttrs(el, attrs);
		append(el, children);
		return el;
	}

	function s(tag, attrs, ...children) {
		const el = document.createElementNS(SVGNS, tag);
		setAttrs(el, attrs);
		append(el, children);
		return el;
	}

	function setAttrs(el, attrs) {
		if (!attrs) return;
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false) continue;
			if (k === 'class') el.setAttribute('class', v);
			else if (k === 'text') el.textContent = v;
			else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
			else el.setAttribute(k, v === true ? '' : String(v));
		}
	}

	function append(el, children) {
		for (const c of children.flat(Infinity)) {
			if (c === undefined || c === null || c === false) continue;
			el.append(c instanceof Node ? c : document.createTextNode(String(c)));
		}
	}

	// ---------- numbers ----------
	const NANO_PER_CENT = 10000000n;

	// nano turns an API number (or string) of nano-dollars into a BigInt.
	function nano(v) {
		if (v === undefined || v === null || v === '') return 0n;
		if (typeof v === 'bigint') return v;
		if (typeof v === 'number') return BigInt(Math.round(v));
		return BigInt(v);
	}

	function groupDigits(str) {
		return str.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
	}

	// usd is dollars to the cent, half up: "$1,234.57".
	function usd(v) {
		let n = nano(v);
		const neg = n < 0n;
		if (neg) n = -n;
		const cents = (n + NANO_PER_CENT / 2n) / NANO_PER_CENT;
		return (neg ? '-' : '') + '$' + groupDigits((cents / 100n).toString()) + '.' + (cents % 100n).toString().padStart(2, '0');
	}

	// usdExact is dollars with all nine decimals: "1234.567890123".
	function usdExact(v) {
		let n = nano(v);
		const neg = n < 0n;
		if (neg) n = -n;
		return (neg ? '-' : '') + (n / 1000000000n).toString() + '.' + (n % 1000000000n).toString().padStart(9, '0');
	}

	function int(v) {
		return groupDigits(String(Math.round(Number(v || 0))));
	}

	function compact(v) {
		const n = Number(v || 0);
		const a = Math.abs(n);
		if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'B';
		if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
		if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + 'k';
		return String(Math.round(n * 100) / 100);
	}

	function pct(num, den) {
		if (!den) return '—';
		return (Math.round((1000 * num) / den) / 10).toFixed(1) + '%';
	}

	// tokens of a row: every kind, as the API's order_by=tokens counts them.
	function tokens(r) {
		return Number(r.input_tokens || 0) + Number(r.output_tokens || 0) + Number(r.cache_read_tokens || 0) +
			Number(r.cache_write_5m_tokens || 0) + Number(r.cache_write_1h_tokens || 0);
	}

	function cacheWrites(r) {
		return Number(r.cache_write_5m_tokens || 0) + Number(r.cache_write_1h_tokens || 0);
	}

	// readShare is the share of the prompt read from the prompt cache.
	function readShare(r) {
		const prompt = Number(r.input_tokens || 0) + Number(r.cache_read_tokens || 0) + cacheWrites(r);
		return prompt ? Number(r.cache_read_tokens || 0) / prompt : null;
	}

	const SUM_FIELDS = ['requests', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_5m_tokens',
		'cache_write_1h_tokens', 'web_search_requests'];

	// nanoFields are the money fields in nano-dollars a row may carry (the
	// cost, and fields later releases add such as cache savings).
	function nanoFields(r) {
		return Object.keys(r).filter((k) => k.endsWith('_nano_usd'));
	}

	// sumRows adds rows up exactly: counts as numbers, money as BigInt.
	function sumRows(rows) {
		const t = { cost_nano_usd: 0n };
		for (const f of SUM_FIELDS) t[f] = 0;
		for (const r of rows) {
			for (const f of SUM_FIELDS) t[f] += Number(r[f] || 0);
			for (const f of nanoFields(r)) t[f] = (t[f] || 0n) + nano(r[f]);
		}
		return t;
	}

	// groupRows folds report rows by one dimension, exactly.
	function groupRows(rows, dim) {
		const m = new Map();
		for (const r of rows) {
			const k = r[dim] ?? '';
			if (!m.has(k)) m.set(k, []);
			m.get(k).push(r);
		}
		const out = [];
		for (const [k, rs] of m) {
			const t = sumRows(rs);
			t[dim] = k;
			out.push(t);
		}
		out.sort((a, b) => (a.cost_nano_usd === b.cost_nano_usd ? String(a[dim]).localeCompare(String(b[dim])) :
			a.cost_nano_usd > b.cost_nano_usd ? -1 : 1));
		return out;
	}

	// ---------- dates (YYYY-MM-DD strings, calendar arithmetic in UTC) ----------
	function addDays(ymd, n) {
		const [y, m, d] = ymd.split('-').map(Number);
		const t = new Date(Date.UTC(y, m - 1, d + n));
		return t.toISOString().slice(0, 10);
	}

	function addMonths(ymd, n) {
		const [y, m] = ymd.split('-').map(Number);
		const t = new Date(Date.UTC(y, m - 1 + n, 1));
		return t.toISOString().slice(0, 10);
	}

	function daysBetween(a, b) {
		return Math.round((Date.parse(b + 'T00:00:00Z') - Date.parse(a + 'T00:00:00Z')) / 86400000);
	}

	function mondayOf(ymd) {
		const [y, m, d] = ymd.split('-').map(Number);
		const wd = (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
		return addDays(ymd, -wd);
	}

	let timeFormat = null;

	function fmtTime(iso) {
		if (!iso) return '';
		const t = new Date(iso);
		if (isNaN(t)) return String(iso);
		return timeFormat ? timeFormat.format(t) : t.toISOString();
	}

	function fmtDuration(seconds) {
		if (seconds === null || seconds === undefined || isNaN(seconds)) return '';
		seconds = Math.max(0, Math.round(seconds));
		const d = Math.floor(seconds / 86400), hr = Math.floor((seconds % 86400) / 3600),
			mi = Math.floor((seconds % 3600) / 60), se = seconds % 60;
		if (d) return d + 'd ' + hr + 'h';
		if (hr) return hr + 'h ' + mi + 'm';
		if (mi) return mi + 'm ' + se + 's';
		return se + 's';
	}

	// ---------- API ----------
	class APIError extends Error {
		constructor(status, message) {
			super(message);
			this.status = status;
		}
	}

	async function api(endpoint, params) {
		const qs = new URLSearchParams();
		for (const [k, v] of Object.entries(params || {})) {
			if (v !== undefined && v !== null && v !== '') qs.set(k, v);
		}
		const q = qs.toString();
		const res = await fetch('api/' + endpoint + (q ? '?' + q : ''), {
			headers: { Accept: 'application/json' },
			credentials: 'same-origin',
		});
		let body = null;
		try {
			body = await res.json();
		} catch (e) {
			body = null;
		}
		if (!res.ok) {
			throw new APIError(res.status, (body && body.error) || res.status + ' ' + res.statusText);
		}
		return body;
	}

	function apiURL(endpoint, params) {
		const qs = new URLSearchParams();
		for (const [k, v] of Object.entries(params || {})) {
			if (v !== undefined && v !== null && v !== '') qs.set(k, v);
		}
		return 'api/' + endpoint + '?' + qs.toString();
	}

	// usage is one /llm_gateway/usage query.
	function usage(groupBy, range, extra) {
		return api('usage', Object.assign({ group_by: groupBy, from: range.from, to: range.to }, extra || {}));
	}

	// ---------- routing and the time range ----------
	let ctx = null; // the gateway's calendar (api/context)

	function route() {
		const raw = location.hash.replace(/^#\/?/, '');
		const qi = raw.indexOf('?');
		const p = qi < 0 ? raw : raw.slice(0, qi);
		const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
		const parts = p.split('/').filter(Boolean).map(decodeURIComponent);
		return { view: parts[0] || 'overview', arg: parts[1], params };
	}

	// href builds a hash link that keeps the time range.
	function href(view, arg, params) {
		const cur = route().params;
		const out = new URLSearchParams();
		for (const k of ['range', 'from', 'to']) if (cur.has(k)) out.set(k, cur.get(k));
		for (const [k, v] of Object.entries(params || {})) {
			if (v === undefined || v === null || v === '') out.delete(k);
			else out.set(k, v);
		}
		const q = out.toString();
		return '#/' + view + (arg !== undefined ? '/' + encodeURIComponent(arg) : '') + (q ? '?' + q : '');
	}

	const RANGE_LABELS = {
		today: 'Today', yesterday: 'Yesterday', week: 'This week', month: 'This month', last_month: 'Last month',
		'7d': 'Last 7 days', '30d': 'Last 30 days', '90d': 'Last 90 days', all: 'All time', custom: 'Custom',
	};

	// resolveRange turns the hash's range into API from/to dates (to is
	// exclusive), in the gateway's calendar.
	function resolveRange(params) {
		let kind = params.get('range') || 'month';
		if (!RANGE_LABELS[kind]) kind = 'month';
		const today = ctx.today, tomorrow = ctx.tomorrow;
		let from, to;
		switch (kind) {
			case 'today': from = today; to = tomorrow; break;
			case 'yesterday': from = addDays(today, -1); to = today; break;
			case 'week': from = ctx.week_start; to = ctx.next_week_start; break;
			case 'month': from = ctx.month_start; to = ctx.next_month_start; break;
			case 'last_month': from = addMonths(ctx.month_start, -1); to = ctx.month_start; break;
			case '7d': from = addDays(today, -6); to = tomorrow; break;
			case '30d': from = addDays(today, -29); to = tomorrow; break;
			case '90d': from = addDays(today, -89); to = tomorrow; break;
			case 'all': from = ''; to = ''; break;
			case 'custom': {
				const re = /^\d{4}-\d{2}-\d{2}$/;
				from = re.test(params.get('from') || '') ? params.get('from') : today;
				const last = re.test(params.get('to') || '') ? params.get('to') : today;
				to = addDays(last < from ? from : last, 1);
				break;
			}
		}
		let label = RANGE_LABELS[kind];
		if (from) label += ' · ' + from + (daysBetween(from, to) > 1 ? ' – ' + addDays(to, -1) : '');
		const days = from ? daysBetween(from, to) : Infinity;
		const bucket = days <= 2 ? 'hour' : days <= 92 ? 'day' : days <= 730 ? 'week' : 'month';
		return { kind, from, to, label, bucket };
	}

	// buckets lists a chart's x values, gaps filled for days and weeks.
	function buckets(range, bucket, present) {
		const have = [...new Set(present)].filter((x) => x !== '').sort();
		if (bucket === 'day' || bucket === 'week') {
			let from = range.from || have[0], to = range.to || (have.length ? addDays(have[have.length - 1], 1) : '');
			if (!from || !to) return have;
			const out = [];
			let d = bucket === 'week' ? mondayOf(from) : from;
			for (let i = 0; d < to && i < 1000; i++) {
				out.push(d);
				d = addDays(d, bucket === 'week' ? 7 : 1);
			}
			return out;
		}
		if (bucket === 'hour' && have.length) {
			// Step an hour at a time between the first and last hour seen; hours
			// the ledger has keep their own labels (their UTC offset included).
			const byMs = new Map(have.map((x) => [Date.parse(x), x]));
			const first = Date.parse(have[0]), last = Date.parse(have[have.length - 1]);
			const out = [];
			for (let t = first; t <= last && out.length < 2000; t += 3600000) out.push(byMs.get(t) || new Date(t).toISOString());
			return out;
		}
		return have;
	}

	function bucketLabel(bucket, v) {
		if (bucket === 'hour') {
			const t = new Date(v);
			if (isNaN(t)) return v;
			return hourFormat ? hourFormat.format(t) : v.slice(11, 16);
		}
		if (bucket === 'day' || bucket === 'week') return v.slice(5);
		return v;
	}

	let hourFormat = null;

	// ---------- widgets ----------
	const PALETTE = ['#2457c5', '#e07b22', '#2e9e5b', '#c0392b', '#7d4cc2', '#15a3b5', '#b5a215', '#d0479a', '#6b7f99', '#8c5a2b'];

	function colorFor(i) {
		return PALETTE[i % PALETTE.length];
	}

	// barChart draws stacked bars: labels on x, one series a stack layer.
	function barChart({ title, labels, series, yFormat, tipFormat, bucket, id }) {
		const W = 640, H = 240, L = 56, R = 8, T = 10, B = 26;
		const n = labels.length;
		const totals = labels.map((_, i) => series.reduce((acc, se) => acc + (se.values[i] || 0), 0));
		const max = Math.max(0, ...totals);
		const step = niceStep(max / 4);
		const top = step ? Math.ceil(max / step) * step : 1;
		const y = (v) => T + (H - T - B) * (1 - v / top);
		const bw = n ? (W - L - R) / n : 0;
		const root = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
		const grid = s('g', { class: 'grid axis' });
		for (let v = 0; v <= top + 1e-9 && step; v += step) {
			grid.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }),
				s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', text: yFormat(v) }));
		}
		root.append(grid);
		const every = Math.max(1, Math.ceil(n / 10));
		labels.forEach((lab, i) => {
			let base = 0;
			const x = L + i * bw + bw * 0.12, w = Math.max(1, bw * 0.76);
			series.forEach((se, j) => {
				const v = se.values[i] || 0;
				if (v <= 0) return;
				const r = s('rect', { x, y: y(base + v), width: w, height: Math.max(0.5, y(base) - y(base + v)), fill: se.color || colorFor(j) });
				r.append(s('title', { text: `${lab} · ${se.name}: ${tipFormat ? tipFormat(v, se, i) : yFormat(v)}` }));
				root.append(r);
				base += v;
			});
			if (i % every === 0) {
				root.append(s('text', { class: 'xlabel', x: L + i * bw + bw / 2, y: H - 10, 'text-anchor': 'middle', text: bucketLabel(bucket, lab) }));
			}
		});
		const legend = h('div', { class: 'legend' }, series.map((se, j) => {
			const sw = h('span', { class: 'sw' });
			sw.style.background = se.color || colorFor(j);
			return h('span', null, sw, se.name);
		}));
		const box = h('div', { class: 'chart', 'data-chart': id || '' }, root, series.length > 1 ? legend : null);
		if (!n) box.append(h('p', { class: 'empty', text: 'No requests in this range.' }));
		return box;
	}

	function niceStep(raw) {
		if (!(raw > 0)) return 0;
		const p = Math.pow(10, Math.floor(Math.log10(raw)));
		for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
		return 10 * p;
	}

	// seriesBy turns rows of (bucket, dim) into chart series, the top few by
	// cost and the rest as "other".
	function seriesBy(rows, bucket, dim, labels, value, maxSeries) {
		const byDim = groupRows(rows, dim);
		const keep = byDim.slice(0, maxSeries || 8).map((r) => r[dim]);
		const names = [...keep];
		if (byDim.length > keep.length) names.push('other');
		const idx = new Map(labels.map((l, i) => [l, i]));
		const series = names.map((nm, j) => ({ name: nm === '' ? '(none)' : nm, values: new Array(labels.length).fill(0),
			color: nm === 'other' && j === names.length - 1 && byDim.length > keep.length ? '#aab4c3' : colorFor(j) }));
		for (const r of rows) {
			const i = idx.get(r[bucket]);
			if (i === undefined) continue;
			let j = keep.indexOf(r[dim]);
			if (j < 0) j = names.length - 1;
			series[j].values[i] += value(r);
		}
		return series;
	}

	function dollars(r) {
		return Number(nano(r.cost_nano_usd)) / 1e9;
	}

	function yUSD(v) {
		return '$' + (v >= 100 ? compact(v) : v >= 1 ? v.toFixed(v % 1 ? 2 : 0) : v ? v.toFixed(v < 0.01 ? 4 : 2) : '0');
	}

	function panel(title, body, tools, note) {
		return h('section', { class: 'panel' },
			h('div', { class: 'head' }, h('h3', { text: title }), h('div', { class: 'tools' }, tools || [])),
			body, note ? h('p', { class: 'note', text: note }) : null);
	}

	function card(label, value, sub, attrs) {
		return h('div', Object.assign({ class: 'card' }, attrs || {}),
			h('div', { class: 'label', text: label }),
			h('div', { class: 'value', text: value }),
			sub ? h('div', { class: 'sub', text: sub }) : null);
	}

	// Column kinds: how a value shows, and how it exports to CSV.
	const KINDS = {
		usd: { cls: 'num', show: (v) => usd(v), csv: (v) => usdExact(v), title: (v) => '$' + usdExact(v) },
		int: { cls: 'num', show: (v) => int(v), csv: (v) => String(v ?? 0) },
		pct: { cls: 'num share', show: (v) => (v === null || v === undefined ? '—' : (Math.round(v * 1000) / 10).toFixed(1) + '%'),
			csv: (v) => (v === null || v === undefined ? '' : String(v)) },
		text: { cls: '', show: (v) => (v === '' || v === undefined || v === null ? '(none)' : String(v)), csv: (v) => String(v ?? '') },
		time: { cls: '', show: (v) => fmtTime(v), csv: (v) => String(v ?? '') },
		secs: { cls: 'num', show: (v) => fmtDuration(v), csv: (v) => (v === null || v === undefined ? '' : String(v)) },
		node: { cls: 'wrap', show: (v) => v, csv: () => '' },
	};

	// table renders rows with a CSV download of exactly those rows (money to
	// the nano-dollar). A column: {key, label, kind, get, link, csvKey}.
	function table(name, columns, rows, opts) {
		opts = opts || {};
		const val = (c, r) => (c.get ? c.get(r) : r[c.key]);
		const thead = h('thead', null, h('tr', null, columns.map((c) => h('th', { class: KINDS[c.kind || 'text'].cls, text: c.label }))));
		const tbody = h('tbody');
		for (const r of rows) {
			const tr = h('tr', { class: opts.rowClass ? opts.rowClass(r) : null });
			for (const c of columns) {
				const k = KINDS[c.kind || 'text'];
				const v = val(c, r);
				const shown = k.show(v);
				const td = h('td', { class: k.cls, 'data-col': c.key, 'data-nano': c.kind === 'usd' ? nano(v).toString() : null,
					title: k.title ? k.title(v) : null });
				if (c.link && c.link(r)) td.append(h('a', { href: c.link(r) }, shown));
				else td.append(shown);
				tr.append(td);
			}
			tbody.append(tr);
		}
		if (opts.total) {
			const tr = h('tr', { class: 'total' });
			columns.forEach((c, i) => {
				const k = KINDS[c.kind || 'text'];
				const v = c.totalGet ? c.totalGet(opts.total) : opts.total[c.key];
				const td = h('td', { class: k.cls, 'data-col': c.key, 'data-nano': c.kind === 'usd' ? nano(v).toString() : null });
				td.append(i === 0 ? 'Total' : v === undefined || c.kind === 'text' || c.kind === 'node' ? '' : k.show(v));
				tr.append(td);
			});
			tbody.append(tr);
		}
		const t = h('table', { 'data-table': name }, thead, tbody);
		const csvBtn = h('button', { type: 'button', class: 'csv', 'data-csv': name, text: 'CSV', title: 'Download these rows as CSV (dollars to the nano-dollar)',
			onclick: () => downloadCSV(name, columns.filter((c) => c.kind !== 'node'), rows, val) });
		const body = rows.length ? t : h('p', { class: 'empty', text: opts.empty || 'Nothing in this range.' });
		return panel(opts.title || name, body, [opts.tools || null, csvBtn], opts.note);
	}

	function csvCell(s) {
		s = String(s);
		return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
	}

	// csvText is the CSV of rows; usd columns as exact decimals plus the
	// nano-dollar integer.
	function csvText(columns, rows, val) {
		const head = [];
		for (const c of columns) {
			const key = c.csvKey || c.key;
			if (c.kind === 'usd') head.push(key.replace(/_nano_usd$/, '_usd'), key.endsWith('_nano_usd') ? key : key + '_nano');
			else head.push(key);
		}
		const lines = [head.map(csvCell).join(',')];
		for (const r of rows) {
			const cells = [];
			for (const c of columns) {
				const v = val(c, r);
				if (c.kind === 'usd') cells.push(usdExact(v), nano(v).toString());
				else cells.push(KINDS[c.kind || 'text'].csv(v));
			}
			lines.push(cells.map(csvCell).join(','));
		}
		return lines.join('\r\n') + '\r\n';
	}

	function downloadCSV(name, columns, rows, val) {
		const blob = new Blob([csvText(columns, rows, val)], { type: 'text/csv;charset=utf-8' });
		const a = h('a', { href: URL.createObjectURL(blob), download: name + '.csv' });
		document.body.append(a);
		a.click();
		setTimeout(() => {
			URL.revokeObjectURL(a.href);
			a.remove();
		}, 0);
	}

	// budgetBar shows one budget: spent, reserved and remaining, and when it
	// resets. remaining = limit − spent − reserved, as the admin API.
	function budgetBar(b) {
		const limit = nano(b.limit_nano_usd), spent = nano(b.spent_nano_usd), reserved = nano(b.reserved_nano_usd);
		let remaining = limit - spent - reserved;
		if (remaining < 0n) remaining = 0n;
		const frac = (x) => (limit > 0n ? Math.min(1, Number((x * 100000n) / limit) / 100000) : 0);
		const fs = frac(spent), fr = Math.min(1 - fs, frac(reserved));
		const over = spent >= limit;
		const bar = s('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img',
			'aria-label': `spent ${usd(spent)} of ${usd(limit)}` },
		s('rect', { x: 0, y: 0, width: 100, height: 10, fill: 'var(--free)' }),
		s('rect', { x: 0, y: 0, width: 100 * fs, height: 10, fill: over ? 'var(--bad)' : fs >= 0.8 ? 'var(--warn)' : 'var(--spent)' }),
		s('rect', { x: 100 * fs, y: 0, width: 100 * fr, height: 10, fill: 'var(--reserved)' }));
		const period = b.period === 'total' ? 'total' : b.period + 'ly';
		const resets = b.resets_at ? 'resets ' + fmtTime(b.resets_at) : 'never resets';
		return h('div', { class: 'budget' + (over ? ' over' : ''), 'data-budget': b.period, 'data-spent-nano': spent.toString(),
			'data-limit-nano': limit.toString() },
		h('div', { class: 'line' }, h('span', { class: 'what', text: `${usd(limit)} ${period.replace('dayly', 'daily')}` }),
			h('span', { class: 'when', text: resets })),
		bar,
		h('div', { class: 'figures', text: `spent ${usd(spent)} · reserved ${usd(reserved)} · remaining ${usd(remaining)} (${pct(Number(spent), Number(limit))} used)` }));
	}

	function budgets(e) {
		if (!e || !e.budgets || !e.budgets.length) return h('span', { class: 'empty', text: 'no budget' });
		return h('div', null, e.budgets.map(budgetBar));
	}

	function rateLimits(e) {
		if (!e || !e.rate_limits || !e.rate_limits.length) return h('span', { class: 'empty', text: 'none' });
		return h('div', null, e.rate_limits.map((r) => h('span', { class: 'pill', text: `${int(r.limit)} ${r.unit} per ${r.per}` })));
	}

	function entityFlags(e) {
		const out = [];
		if (!e) return out;
		if (e.disabled) out.push(h('span', { class: 'pill bad', text: 'disabled' }));
		if (e.expires) out.push(h('span', { class: 'pill', text: 'expires ' + fmtTime(e.expires) }));
		if (e.models && e.models.length) out.push(h('span', { class: 'pill', text: 'models ' + e.models.join(' ') }));
		return out;
	}

	// ---------- common columns ----------
	const COL = {
		requests: { key: 'requests', label: 'Requests', kind: 'int' },
		tokens: { key: 'tokens', label: 'Tokens', kind: 'int', get: tokens, totalGet: tokens },
		input: { key: 'input_tokens', label: 'Input', kind: 'int' },
		output: { key: 'output_tokens', label: 'Output', kind: 'int' },
		cacheRead: { key: 'cache_read_tokens', label: 'Cache read', kind: 'int' },
		cacheWrite: { key: 'cache_write_tokens', label: 'Cache write', kind: 'int', get: cacheWrites, totalGet: cacheWrites },
		cost: { key: 'cost_nano_usd', csvKey: 'cost_nano_usd', label: 'Cost', kind: 'usd' },
	};

	function shareCol(total) {
		return { key: 'share', label: 'Share', kind: 'pct', get: (r) => (total > 0n ? Number((nano(r.cost_nano_usd) * 100000n) / total) / 100000 : null) };
	}

	// extraMoneyCols shows money fields beyond the cost that the API answers
	// (e.g. cache savings), whatever their name.
	function extraMoneyCols(rows) {
		const keys = new Set();
		for (const r of rows) for (const k of nanoFields(r)) if (k !== 'cost_nano_usd') keys.add(k);
		return [...keys].sort().map((k) => ({ key: k, csvKey: k, label: humanize(k.replace(/_nano_usd$/, '')), kind: 'usd' }));
	}

	function humanize(k) {
		const t = k.replace(/_/g, ' ');
		return t.charAt(0).toUpperCase() + t.slice(1);
	}

	// ---------- views ----------
	async function viewOverview(r, range) {
		// One report grouped by bucket, team, model and provider answers the
		// cards, the splits and the charts (summed here, exactly); with day
		// buckets it is widened to cover this week and this month, so the
		// ledger is read twice in all (with the top keys), not five times.
		const calFrom = [ctx.week_start, ctx.month_start].sort()[0];
		const widen = range.bucket === 'day' && range.from !== '';
		const q = widen ? { from: [range.from, calFrom].sort()[0], to: [range.to, ctx.tomorrow].sort()[1] } : range;
		const [rep, keys, calRep] = await Promise.all([
			usage(range.bucket + ',team,model,provider', q),
			usage('key', range, { limit: 10 }),
			widen ? null : api('usage', { group_by: 'day', from: calFrom, to: ctx.tomorrow }),
		]);
		const inRange = widen ? rep.rows.filter((x) => x.day >= range.from && x.day < range.to) : rep.rows;
		const split = { rows: inRange, total: widen ? sumRows(inRange) : rep.total };
		const cal = calRep || rep;
		const sinceDay = (d) => sumRows(cal.rows.filter((x) => x.day >= d));
		const today = sinceDay(ctx.today), week = sinceDay(ctx.week_start), month = sinceDay(ctx.month_start);
		const elapsed = Math.max(1, Math.round(ctx.month_elapsed_seconds));
		const projected = (month.cost_nano_usd * BigInt(Math.round(ctx.month_seconds))) / BigInt(elapsed);
		const cards = h('div', { class: 'cards' },
			card('Today', usd(today.cost_nano_usd), int(today.requests) + ' requests', { 'data-metric': 'today', 'data-nano': today.cost_nano_usd.toString() }),
			card('This week', usd(week.cost_nano_usd), int(week.requests) + ' requests · since ' + ctx.week_start, { 'data-metric': 'week', 'data-nano': week.cost_nano_usd.toString() }),
			card('This month', usd(month.cost_nano_usd), int(month.requests) + ' requests · since ' + ctx.month_start, { 'data-metric': 'month', 'data-nano': month.cost_nano_usd.toString() }),
			card('Projected month end', usd(projected), 'at this month\'s burn rate', { 'data-metric': 'projected', 'data-nano': projected.toString() }),
			card('Selected range', usd(split.total.cost_nano_usd), int(split.total.requests) + ' requests · ' + compact(tokens(split.total)) + ' tokens',
				{ 'data-metric': 'range', 'data-nano': nano(split.total.cost_nano_usd).toString() }),
			...extraMoneyCols([split.total]).map((c) => card(c.label, usd(split.total[c.key]), 'in the selected range', { 'data-metric': c.key, 'data-nano': nano(split.total[c.key]).toString() })));

		const total = nano(split.total.cost_nano_usd);
		const by = (dim, label, link) => table('by-' + dim, [
			{ key: dim, label, kind: 'text', link },
			COL.requests, COL.tokens, COL.cost, shareCol(total)], groupRows(split.rows, dim), { title: 'Spend by ' + dim, total: split.total });

		const chart = split;
		const labels = buckets(range, range.bucket, chart.rows.map((x) => x[range.bucket]));
		const byBucket = new Map(groupRows(chart.rows, range.bucket).map((x) => [x[range.bucket], x]));
		const col = (f) => labels.map((l) => Number((byBucket.get(l) || {})[f] || 0));
		const reqChart = barChart({ title: 'Requests', id: 'requests', bucket: range.bucket, labels, yFormat: compact,
			series: [{ name: 'requests', values: col('requests') }] });
		const tokChart = barChart({ title: 'Tokens', id: 'tokens', bucket: range.bucket, labels, yFormat: compact,
			series: [
				{ name: 'cache read', values: col('cache_read_tokens'), color: '#8fb0ee' },
				{ name: 'input', values: col('input_tokens'), color: '#2457c5' },
				{ name: 'cache write', values: labels.map((l) => cacheWrites(byBucket.get(l) || {})), color: '#e07b22' },
				{ name: 'output', values: col('output_tokens'), color: '#2e9e5b' }] });
		const costChart = barChart({ title: 'Spend by model', id: 'spend', bucket: range.bucket, labels, yFormat: yUSD,
			tipFormat: (v) => '$' + v.toFixed(4), series: seriesBy(chart.rows, range.bucket, 'model', labels, dollars, 8) });

		return [
			h('h2', { text: 'Overview' }),
			cards,
			h('div', { class: 'grid2' },
				panel('Spend over time by model', costChart),
				panel('Requests over time', reqChart),
				panel('Tokens over time', tokChart)),
			h('div', { class: 'grid2' },
				by('team', 'Team', (x) => (x.team ? href('teams', x.team) : null)),
				by('model', 'Model'),
				by('provider', 'Provider'),
				table('top-keys', [{ key: 'key', label: 'Key', kind: 'text', link: (x) => (x.key ? href('keys', x.key) : null) },
					COL.requests, COL.tokens, COL.cost, shareCol(total)], keys.rows, { title: 'Top keys by spend' })),
		];
	}

	async function entityMap(kind) {
		const doc = await api(kind);
		return new Map((doc[kind] || []).map((e) => [e.name, e]));
	}

	async function viewTeams(r, range) {
		const [teams, keys, customers, byTeam, byKey] = await Promise.all([
			entityMap('teams'), entityMap('keys'), entityMap('customers'), usage('team', range), usage('key', range)]);
		const spend = new Map(byTeam.rows.map((x) => [x.team, x]));
		const names = [...new Set([...teams.keys(), ...byTeam.rows.map((x) => x.team).filter(Boolean)])];
		const keyCount = new Map();
		for (const k of keys.values()) if (k.team) keyCount.set(k.team, (keyCount.get(k.team) || 0) + 1);
		const rows = names.map((n) => Object.assign({ team: n, customer: (teams.get(n) || {}).customer || '', keys: keyCount.get(n) || 0 },
			spend.get(n) || { requests: 0, cost_nano_usd: 0 }));
		rows.sort((a, b) => (nano(b.cost_nano_usd) > nano(a.cost_nano_usd) ? 1 : nano(b.cost_nano_usd) < nano(a.cost_nano_usd) ? -1 : a.team.localeCompare(b.team)));
		const teamTable = table('teams', [
			{ key: 'team', label: 'Team', kind: 'text', link: (x) => href('teams', x.team) },
			{ key: 'customer', label: 'Customer', kind: 'text' },
			{ key: 'keys', label: 'Keys', kind: 'int' },
			COL.requests, COL.tokens, COL.cost,
			{ key: 'budgets', label: 'Budgets', kind: 'node', get: (x) => budgets(teams.get(x.team)) },
			{ key: 'rate_limits', label: 'Rate limits', kind: 'node', get: (x) => rateLimits(teams.get(x.team)) }],
		rows, { title: 'Teams', total: byTeam.total, note: 'Spend in the selected range; budgets as they stand now.' });
		const keySpend = new Map(byKey.rows.map((x) => [x.key, x]));
		const loose = [...keys.values()].filter((k) => !k.team).map((k) => Object.assign({ key: k.name, customer: k.customer || '' },
			keySpend.get(k.name) || { requests: 0, cost_nano_usd: 0 }));
		const looseTable = table('keys-without-team', [
			{ key: 'key', label: 'Key', kind: 'text', link: (x) => href('keys', x.key) },
			{ key: 'customer', label: 'Customer', kind: 'text' },
			COL.requests, COL.tokens, COL.cost,
			{ key: 'budgets', label: 'Budgets', kind: 'node', get: (x) => budgets(keys.get(x.key)) },
			{ key: 'rate_limits', label: 'Rate limits', kind: 'node', get: (x) => rateLimits(keys.get(x.key)) }],
		loose, { title: 'Keys without a team', empty: 'Every key belongs to a team.' });
		const custRows = [...customers.values()].map((c) => ({ customer: c.name, spend: c.spend }));
		const custTable = table('customers', [
			{ key: 'customer', label: 'Customer', kind: 'text' },
			{ key: 'budgets', label: 'Budgets', kind: 'node', get: (x) => budgets(customers.get(x.customer)) },
			{ key: 'rate_limits', label: 'Rate limits', kind: 'node', get: (x) => rateLimits(customers.get(x.customer)) }],
		custRows, { title: 'Customers', empty: 'No customers configured.' });
		return [h('h2', { text: 'Teams & keys' }), teamTable, looseTable, custTable];
	}

	async function spendByModelChart(range, filter) {
		const rep = await usage(range.bucket + ',model', range, filter);
		const labels = buckets(range, range.bucket, rep.rows.map((x) => x[range.bucket]));
		const series = seriesBy(rep.rows, range.bucket, 'model', labels, dollars, 8);
		return { rep, chart: barChart({ title: 'Spend by model', id: 'spend-by-model', bucket: range.bucket, labels, series, yFormat: yUSD,
			tipFormat: (v) => '$' + v.toFixed(4) }) };
	}

	async function viewTeam(r, range) {
		const team = r.arg;
		const [teams, keys, byKey, byModel] = await Promise.all([
			entityMap('teams'), entityMap('keys'), usage('key', range, { team }), spendByModelChart(range, { team })]);
		const e = teams.get(team);
		const spend = new Map(byKey.rows.map((x) => [x.key, x]));
		const members = [...keys.values()].filter((k) => k.team === team).map((k) => k.name);
		for (const x of byKey.rows) if (!members.includes(x.key)) members.push(x.key);
		const rows = members.map((k) => Object.assign({ key: k }, spend.get(k) || { requests: 0, cost_nano_usd: 0 }));
		rows.sort((a, b) => (nano(b.cost_nano_usd) > nano(a.cost_nano_usd) ? 1 : nano(b.cost_nano_usd) < nano(a.cost_nano_usd) ? -1 : a.key.localeCompare(b.key)));
		const total = nano(byKey.total.cost_nano_usd);
		return [
			h('div', { class: 'crumbs' }, h('a', { href: href('teams'), text: 'Teams' }), ' / ', team),
			h('h2', { text: 'Team ' + team }),
			h('div', { class: 'cards' },
				card('Spend in range', usd(byKey.total.cost_nano_usd), int(byKey.total.requests) + ' requests', { 'data-metric': 'range', 'data-nano': nano(byKey.total.cost_nano_usd).toString() }),
				card('Customer', (e && e.customer) || '—', e ? '' : 'not in the current config')),
			h('div', { class: 'grid2' },
				panel('Budgets', budgets(e), null, 'Spent, reserved by requests in flight, and remaining, as the counters stand now.'),
				panel('Rate limits', h('div', null, rateLimits(e), entityFlags(e)))),
			table('team-keys', [
				{ key: 'key', label: 'Key', kind: 'text', link: (x) => href('keys', x.key) },
				COL.requests, COL.tokens, COL.cost, shareCol(total),
				{ key: 'budgets', label: 'Budgets', kind: 'node', get: (x) => budgets(keys.get(x.key)) },
				{ key: 'rate_limits', label: 'Rate limits', kind: 'node', get: (x) => rateLimits(keys.get(x.key)) }],
			rows, { title: 'Keys', total: byKey.total }),
			h('div', { class: 'grid2' },
				panel('Spend over time by model', byModel.chart),
				table('team-models', [{ key: 'model', label: 'Model', kind: 'text' }, COL.requests, COL.tokens, COL.cost],
					groupRows(byModel.rep.rows, 'model'), { title: 'Models', total: byModel.rep.total })),
		];
	}

	async function viewKey(r, range) {
		const key = r.arg;
		const [keys, byModel, sessions] = await Promise.all([
			entityMap('keys'), spendByModelChart(range, { key }), topSessions(range, { key }, 10)]);
		const e = keys.get(key);
		const crumbs = [h('a', { href: href('teams'), text: 'Teams' }), ' / '];
		if (e && e.team) crumbs.push(h('a', { href: href('teams', e.team), text: e.team }), ' / ');
		crumbs.push(key);
		return [
			h('div', { class: 'crumbs' }, crumbs),
			h('h2', { text: 'Key ' + key }),
			h('div', { class: 'cards' },
				card('Spend in range', usd(byModel.rep.total.cost_nano_usd), int(byModel.rep.total.requests) + ' requests',
					{ 'data-metric': 'range', 'data-nano': nano(byModel.rep.total.cost_nano_usd).toString() }),
				card('Team', (e && e.team) || '—', e && e.customer ? 'customer ' + e.customer : ''),
				card('Since the ledger began', e ? usd(e.spend.cost_nano_usd) : '—', e ? int(e.spend.requests) + ' requests' : 'not in the current config')),
			h('div', { class: 'grid2' },
				panel('Budgets', budgets(e), null, 'Spent, reserved by requests in flight, and remaining, as the counters stand now.'),
				panel('Rate limits and access', h('div', null, rateLimits(e), h('div', null, entityFlags(e))))),
			h('div', { class: 'grid2' },
				panel('Spend over time by model', byModel.chart),
				table('key-models', [{ key: 'model', label: 'Model', kind: 'text' }, COL.requests, COL.tokens, COL.cost],
					groupRows(byModel.rep.rows, 'model'), { title: 'Models', total: byModel.rep.total })),
			sessionsTable(sessions, 'key-sessions', 'Most expensive sessions',
				has('requests') ? h('a', { href: href('requests', undefined, { key }), text: 'Request log of this key →' }) : null),
		];
	}

	// ---------- sessions ----------
	function has(endpoint) {
		return (ctx.endpoints || []).includes(endpoint);
	}

	// sessionRow normalises a session from /sessions (or a usage row).
	function sessionRow(x) {
		const first = x.first_seen || x.first || x.started_at || '';
		const last = x.last_seen || x.last || x.ended_at || '';
		let dur = x.duration_seconds ?? x.duration_s;
		if (dur === undefined && first && last) dur = (Date.parse(last) - Date.parse(first)) / 1000;
		let models = x.models;
		if (Array.isArray(models)) models = models.join(' ');
		return Object.assign({}, x, { session: x.session ?? x.group ?? '', first_seen: first, last_seen: last, duration: dur, models: models || x.model || '' });
	}

	async function topSessions(range, filter, limit, cursor) {
		if (has('sessions')) {
			const doc = await api('sessions', Object.assign({ from: range.from, to: range.to, order_by: 'cost', limit, cursor }, filter));
			return { rows: (doc.rows || []).map(sessionRow), total: doc.total, next: doc.next_cursor, full: true };
		}
		const doc = await usage('session,key', range, Object.assign({ session: '?*', order_by: 'cost', limit, cursor }, filter));
		return { rows: doc.rows.map(sessionRow), total: doc.total, next: doc.next_cursor, full: false };
	}

	function sessionsTable(ses, name, title, tools) {
		const cols = [
			{ key: 'session', label: 'Session', kind: 'text', link: (x) => (x.session ? href('sessions', x.session) : null) },
			{ key: 'key', label: 'Key', kind: 'text', link: (x) => (x.key ? href('keys', x.key) : null) }];
		if (ses.full) {
			cols.push({ key: 'first_seen', label: 'Started', kind: 'time' }, { key: 'duration', label: 'Duration', kind: 'secs' },
				{ key: 'models', label: 'Models', kind: 'text' });
		}
		cols.push(COL.requests, COL.tokens, { key: 'read_share', label: 'Cache read share', kind: 'pct', get: readShare }, COL.cost);
		return table(name, cols, ses.rows, { title, tools, empty: 'No Claude Code sessions in this range.' });
	}

	async function viewSessions(r, range) {
		const cursor = r.params.get('cursor') || '';
		const ses = await topSessions(range, {}, 50, cursor);
		const pager = h('div', { class: 'pager' },
			cursor ? h('a', { href: href('sessions', undefined, { cursor: '' }), text: '← First page' }) : null,
			ses.next ? h('a', { href: href('sessions', undefined, { cursor: ses.next }), text: 'Next page →' }) : null);
		return [h('h2', { text: 'Claude Code sessions' }),
			sessionsTable(ses, 'sessions', 'Most expensive sessions (by X-Claude-Code-Session-Id)'), pager];
	}

	async function viewSession(r, range) {
		const id = r.arg;
		const all = { from: '', to: '' }; // a session is shown whole, whatever the range
		const [sum, byModel, reqs] = await Promise.all([
			usage('session,key', all, { session: id }),
			usage('model', all, { session: id }),
			has('requests') ? api('requests', { session: id, limit: 200 }) : usage('hour,model', all, { session: id })]);
		const keyName = sum.rows.length ? sum.rows[0].key : '';
		const out = [
			h('div', { class: 'crumbs' }, h('a', { href: href('sessions'), text: 'Sessions' }), ' / ', id),
			h('h2', { text: 'Session ' + id }),
			h('div', { class: 'cards' },
				card('Cost', usd(sum.total.cost_nano_usd), int(sum.total.requests) + ' requests', { 'data-metric': 'session', 'data-nano': nano(sum.total.cost_nano_usd).toString() }),
				card('Key', keyName || '—', ''),
				card('Tokens', compact(tokens(sum.total)), 'cache read share ' + pct(Number(sum.total.cache_read_tokens || 0),
					Number(sum.total.input_tokens || 0) + Number(sum.total.cache_read_tokens || 0) + cacheWrites(sum.total)))),
			table('session-models', [{ key: 'model', label: 'Model', kind: 'text' }, COL.requests, COL.tokens, COL.cost],
				byModel.rows, { title: 'Models', total: byModel.total }),
		];
		if (has('requests')) out.push(requestsTable(reqs.rows || [], 'session-requests', 'Requests of this session'));
		else {
			out.push(table('session-hours', [{ key: 'hour', label: 'Hour', kind: 'time' }, { key: 'model', label: 'Model', kind: 'text' },
				COL.requests, COL.input, COL.output, COL.cacheRead, COL.cacheWrite, COL.cost], reqs.rows, { title: 'Requests by hour' }));
		}
		return out;
	}

	// ---------- requests ----------
	const REQUEST_FILTERS = ['key', 'team', 'model', 'status', 'rejection'];

	function requestsTable(rows, name, title, tools) {
		const cols = [
			{ key: 'time', label: 'Time', kind: 'time', get: (x) => x.time || x.timestamp || '' },
			{ key: 'key', label: 'Key', kind: 'text', link: (x) => (x.key ? href('keys', x.key) : null) },
			{ key: 'team', label: 'Team', kind: 'text' },
			{ key: 'model', label: 'Model', kind: 'text' },
			{ key: 'provider', label: 'Provider', kind: 'text' },
			{ key: 'status', label: 'Status', kind: 'int' },
			{ key: 'rejection', label: 'Refused', kind: 'text', get: (x) => x.rejection || '' },
			COL.input, COL.output, COL.cacheRead, COL.cacheWrite,
			{ key: 'duration_ms', label: 'Duration', kind: 'text', get: (x) => durationOf(x) },
			COL.cost,
			{ key: 'session', label: 'Session', kind: 'text', get: (x) => x.session || x.session_id || '',
				link: (x) => (x.session || x.session_id ? href('sessions', x.session || x.session_id) : null) },
			{ key: 'request_id', label: 'Request id', kind: 'text' }];
		return table(name, cols, rows, { title, tools, empty: 'No requests match.' });
	}

	function durationOf(x) {
		const ms = x.duration_ms ?? (x.duration_seconds !== undefined ? x.duration_seconds * 1000 : undefined);
		if (ms !== undefined && ms !== null) return ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : Math.round(ms) + ' ms';
		return x.duration || '';
	}

	async function viewRequests(r, range) {
		const out = [h('h2', { text: 'Requests' })];
		if (!has('requests')) {
			out.push(h('p', { class: 'empty', text: 'This gateway\'s admin API has no request log (GET /llm_gateway/requests).' }));
			return out;
		}
		const filters = {};
		for (const f of REQUEST_FILTERS) if (r.params.get(f)) filters[f] = r.params.get(f);
		const cursor = r.params.get('cursor') || '';
		const form = h('form', { class: 'filters', id: 'request-filters' },
			REQUEST_FILTERS.map((f) => h('label', null, f, h('input', { name: f, value: filters[f] || '', placeholder: f === 'status' ? 'e.g. 402' : 'any (globs ok)', size: 14 }))),
			h('button', { type: 'submit', text: 'Filter' }),
			h('a', { href: href('requests', undefined, Object.fromEntries(REQUEST_FILTERS.map((f) => [f, '']).concat([['cursor', '']]))), text: 'Clear' }));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			const p = { cursor: '' };
			for (const f of REQUEST_FILTERS) p[f] = form.elements[f].value.trim();
			location.hash = href('requests', undefined, p);
		});
		const q = Object.assign({ from: range.from, to: range.to, limit: 50, cursor }, filters);
		const doc = await api('requests', q);
		const full = apiURL('requests', Object.assign({}, q, { cursor: '', limit: '', format: 'csv' }));
		out.push(form, requestsTable(doc.rows || [], 'requests', 'Request log (newest first)', h('a', { href: full, download: 'requests.csv', text: 'Full CSV' })),
			h('div', { class: 'pager' },
				cursor ? h('a', { href: href('requests', undefined, { cursor: '' }), text: '← First page' }) : null,
				doc.next_cursor ? h('a', { href: href('requests', undefined, { cursor: doc.next_cursor }), text: 'Next page →' }) : null));
		return out;
	}

	// ---------- refusals ----------
	// Budget and rate-limit refusals are ledger rows with a rejection reason;
	// the usage report groups them by reason (rejection=?* keeps refused
	// requests only).
	async function viewRefusals(r, range) {
		const refusedOnly = { rejection: '?*', order_by: 'requests' };
		const [overTime, byKey] = await Promise.all([
			usage(range.bucket + ',rejection', range, refusedOnly),
			usage('key,team,rejection', range, refusedOnly)]);
		const labels = buckets(range, range.bucket, overTime.rows.map((x) => x[range.bucket]));
		const idx = new Map(labels.map((l, i) => [l, i]));
		const perReason = groupRows(overTime.rows, 'rejection');
		const reasons = perReason.map((x) => x.rejection).sort();
		const series = reasons.map((rs, j) => ({ name: rs, values: new Array(labels.length).fill(0), color: colorFor(j + 3) }));
		for (const x of overTime.rows) {
			const i = idx.get(x[range.bucket]);
			if (i !== undefined) series[reasons.indexOf(x.rejection)].values[i] += Number(x.requests);
		}
		return [
			h('h2', { text: 'Refusals' }),
			h('div', { class: 'cards' },
				card('Refusals', int(overTime.total.requests), 'in the selected range', { 'data-metric': 'refusals', 'data-count': overTime.total.requests }),
				...perReason.map((x) => card(x.rejection, int(x.requests), 'refusals', { 'data-metric': 'refusals-' + x.rejection, 'data-count': x.requests }))),
			h('div', { class: 'grid2' },
				panel('Refusals over time', barChart({ title: 'Refusals', id: 'refusals', bucket: range.bucket, labels, series, yFormat: compact })),
				table('refusals-by-key', [
					{ key: 'key', label: 'Key', kind: 'text', link: (x) => (x.key ? href('keys', x.key) : null) },
					{ key: 'team', label: 'Team', kind: 'text' },
					{ key: 'rejection', label: 'Reason', kind: 'text' },
					{ key: 'requests', label: 'Refusals', kind: 'int' }],
				byKey.rows, { title: 'Who is being stopped', total: byKey.total, empty: 'Nobody was refused in this range.',
					tools: h('a', { href: href('requests', undefined, { rejection: '?*', cursor: '' }), text: 'In the request log →' }) })),
		];
	}

	// ---------- cache efficiency ----------
	// insightFields are the prompt-cache insight fields merged into usage
	// rows (GET /llm_gateway/cache_insight): what cache writes cost, and the
	// 1-hour writes no later request read within the hour.
	const INSIGHT_FIELDS = ['cache_write_cost_nano_usd', 'cache_write_1h_unread_tokens', 'cache_write_1h_unread_cost_nano_usd'];

	function mergeInsight(rows, total, insight, dim) {
		if (!insight) return;
		const by = new Map((insight.rows || []).map((x) => [x[dim], x]));
		for (const r of rows) {
			const x = by.get(r[dim]);
			for (const f of INSIGHT_FIELDS) r[f] = x ? x[f] || 0 : 0;
		}
		for (const f of INSIGHT_FIELDS) total[f] = (insight.total || {})[f] || 0;
	}

	async function viewCache(r, range) {
		const insight = has('cache_insight');
		const [byKey, byTeam, inKey, inTeam] = await Promise.all([usage('key', range), usage('team', range),
			insight ? api('cache_insight', { group_by: 'key', from: range.from, to: range.to }) : null,
			insight ? api('cache_insight', { group_by: 'team', from: range.from, to: range.to }) : null]);
		mergeInsight(byKey.rows, byKey.total, inKey, 'key');
		mergeInsight(byTeam.rows, byTeam.total, inTeam, 'team');
		const t = byKey.total;
		const insightCols = insight ? [
			{ key: 'cache_write_cost_nano_usd', csvKey: 'cache_write_cost_nano_usd', label: 'Cache write cost', kind: 'usd' },
			{ key: 'cache_write_1h_unread_tokens', label: '1h writes never read', kind: 'int' },
			{ key: 'cache_write_1h_unread_cost_nano_usd', csvKey: 'cache_write_1h_unread_cost_nano_usd', label: 'Cost of unread 1h writes', kind: 'usd' }] : [];
		const cols = (dim, label, link) => [
			{ key: dim, label, kind: 'text', link },
			COL.requests,
			{ key: 'read_share', label: 'Cache read share', kind: 'pct', get: readShare, totalGet: readShare },
			COL.cacheRead, COL.input,
			{ key: 'cache_write_5m_tokens', label: 'Cache write 5m', kind: 'int' },
			{ key: 'cache_write_1h_tokens', label: 'Cache write 1h', kind: 'int' },
			...insightCols,
			...extraMoneyCols(byKey.rows.concat(byTeam.rows)).filter((c) => !INSIGHT_FIELDS.includes(c.key)),
			COL.cost];
		const low = (x) => (readShare(x) !== null && readShare(x) < 0.5 && Number(x.requests) >= 5 ? 'low' : null);
		const sortShare = (rows) => [...rows].sort((a, b) => (readShare(a) ?? 2) - (readShare(b) ?? 2));
		const money = (key, label, sub) => card(label, usd(t[key]), sub, { 'data-metric': key, 'data-nano': nano(t[key]).toString() });
		return [
			h('h2', { text: 'Cache efficiency' }),
			h('div', { class: 'cards' },
				card('Cache read share', pct(Number(t.cache_read_tokens || 0), Number(t.input_tokens || 0) + Number(t.cache_read_tokens || 0) + cacheWrites(t)),
					'of prompt tokens read from the prompt cache', { 'data-metric': 'read-share' }),
				card('Cache reads', compact(t.cache_read_tokens), 'tokens'),
				card('Cache writes', compact(cacheWrites(t)), 'tokens (5m + 1h)'),
				insight ? money('cache_write_cost_nano_usd', 'Cache write spend', 'what prompt-cache writes cost') : null,
				insight ? money('cache_write_1h_unread_cost_nano_usd', 'Unread 1h writes', 'paid for, never read within the hour') : null,
				...extraMoneyCols([t]).filter((c) => !INSIGHT_FIELDS.includes(c.key)).map((c) => money(c.key, c.label, 'in the selected range'))),
			table('cache-by-key', cols('key', 'Key', (x) => (x.key ? href('keys', x.key) : null)), sortShare(byKey.rows),
				{ title: 'By key (lowest read share first)', rowClass: low, total: t,
					note: 'Claude Code\'s cost is mostly cache reads; a key with a low read share pays full input price for prompts it could have read from the cache.' }),
			table('cache-by-team', cols('team', 'Team', (x) => (x.team ? href('teams', x.team) : null)), sortShare(byTeam.rows),
				{ title: 'By team (lowest read share first)', rowClass: low, total: byTeam.total }),
		];
	}

	// ---------- page ----------
	const VIEWS = {
		overview: viewOverview,
		teams: (r, range) => (r.arg ? viewTeam(r, range) : viewTeams(r, range)),
		keys: (r, range) => (r.arg ? viewKey(r, range) : viewTeams(r, range)),
		sessions: (r, range) => (r.arg ? viewSession(r, range) : viewSessions(r, range)),
		requests: viewRequests,
		refusals: viewRefusals,
		cache: viewCache,
	};

	let generation = 0;

	async function render() {
		const gen = ++generation;
		const hash = location.hash;
		const main = document.getElementById('view');
		main.setAttribute('data-state', 'loading');
		const r = route();
		if (!VIEWS[r.view]) r.view = 'overview';
		for (const a of document.querySelectorAll('#nav a')) {
			a.classList.toggle('active', a.dataset.view === (r.view === 'keys' ? 'teams' : r.view));
			a.setAttribute('href', href(a.dataset.view));
		}
		try {
			if (!ctx || gen === 1 || Date.now() - ctxAt > 60000) await loadContext();
			const range = resolveRange(r.params);
			syncRangeBar(range, r.params);
			const nodes = await VIEWS[r.view](r, range);
			if (gen !== generation) return;
			main.replaceChildren(...nodes);
			main.setAttribute('data-view', r.view);
			main.setAttribute('data-route', hash);
			// Milliseconds since navigation began: the first render's time.
			main.setAttribute('data-rendered-ms', String(Math.round(performance.now())));
			main.setAttribute('data-state', 'ready');
		} catch (err) {
			if (gen !== generation) return;
			main.replaceChildren(h('div', { class: 'error', text: 'Could not load this view: ' + err.message }));
			main.setAttribute('data-route', hash);
			main.setAttribute('data-state', 'error');
		}
	}

	let ctxAt = 0;

	async function loadContext() {
		ctx = await api('context');
		ctxAt = Date.now();
		let tz = ctx.timezone;
		try {
			new Intl.DateTimeFormat('en', { timeZone: tz });
		} catch (e) {
			tz = 'UTC';
		}
		timeFormat = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
		hourFormat = new Intl.DateTimeFormat('en-GB', { timeZone: tz, day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
		document.getElementById('footer').textContent = `Gateway timezone ${ctx.timezone} · figures from the gateway's ledger, to the cent (CSV exports to the nano-dollar) · loaded ${fmtTime(ctx.now)}`;
	}

	function syncRangeBar(range, params) {
		document.getElementById('range').value = range.kind;
		document.getElementById('custom').classList.toggle('hidden', range.kind !== 'custom');
		if (range.kind === 'custom') {
			document.getElementById('from').value = range.from;
			document.getElementById('to').value = addDays(range.to, -1);
		}
		document.getElementById('rangelabel').textContent = range.label + (ctx ? ' (' + ctx.timezone + ')' : '');
	}

	function setRange(kind) {
		const r = route();
		const p = new URLSearchParams(r.params);
		p.set('range', kind);
		p.delete('cursor');
		if (kind === 'custom') {
			p.set('from', document.getElementById('from').value || ctx.month_start);
			p.set('to', document.getElementById('to').value || ctx.today);
		} else {
			p.delete('from');
			p.delete('to');
		}
		location.hash = '#/' + [r.view, r.arg].filter((x) => x !== undefined).map(encodeURIComponent).join('/') + '?' + p.toString();
	}

	function init() {
		document.getElementById('range').addEventListener('change', (ev) => {
			if (ev.target.value === 'custom') {
				document.getElementById('custom').classList.remove('hidden');
				if (!document.getElementById('from').value) document.getElementById('from').value = ctx ? ctx.month_start : '';
				if (!document.getElementById('to').value) document.getElementById('to').value = ctx ? ctx.today : '';
				return;
			}
			setRange(ev.target.value);
		});
		document.getElementById('apply').addEventListener('click', () => setRange('custom'));
		window.addEventListener('hashchange', render);
		render();
	}

	// Exposed for tests and the curious: the money formatting the page uses.
	window.llmGatewayDashboard = { usd, usdExact, csvText, render };

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
	else init();
})();
