// Differential test of `sluice cron next` against the npm package croner.
//
// Usage: node tests/cron/croner-diff.mjs PATH/TO/sluice [SEED] [CASES]
//
// Generates CASES (default 3000) random cron expressions from a seeded PRNG (default seed 1, so
// every run checks the same cases), each with a time zone, a start instant (half of them just
// before a daylight-saving change) and a count N. croner computes the next N fire times; sluice
// answers all cases from one process (`sluice cron next --batch`). Prints each mismatch and ends
// with "P passed, F failed"; exits 0 iff F == 0.
//
// Day-of-month and day-of-week follow Airflow's croniter, which croner shares: ORed unless one
// of them is exactly "*". Where the two differ on purpose, the case is translated, not skipped:
// - croniter also counts a field that covers every day ("1-31", "*/1", "SUN-7") as "*" when the
//   other field holds a '*' somewhere; croner does not. Such a field is given to croner as "*".
// - "N/S" steps need croner's sloppyRanges option.
// - "@every D" is not in croner; its fire times (multiples of D since the epoch) are computed here.
// - "@once" is not compared.
import { spawnSync } from 'node:child_process';
import { Cron } from 'croner';

const [binary, seedArg, casesArg] = process.argv.slice(2);
if (!binary) {
	console.error('usage: node croner-diff.mjs PATH/TO/sluice [SEED] [CASES]');
	process.exit(2);
}
const SEED = Number(seedArg ?? 1);
const CASES = Number(casesArg ?? 3000);

// Zones with ordinary, half-hour, 45-minute, midnight and negative DST rules, and none at all.
// Kept to zones whose rules are settled, since croner uses ICU's tzdata and sluice the system's.
const ZONES = [
	'UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Australia/Sydney',
	'Asia/Kolkata', 'Pacific/Chatham', 'America/St_Johns', 'Europe/London', 'Europe/Dublin',
	'America/Santiago', 'America/Havana', 'Asia/Tokyo', 'Pacific/Auckland', 'America/Adak',
	'Asia/Tehran', 'America/Los_Angeles', 'Asia/Kathmandu', 'Africa/Cairo', 'America/Asuncion',
];
const FROM_MIN = Date.UTC(2000, 0, 1) / 1000;
const FROM_MAX = Date.UTC(2034, 0, 1) / 1000;

// mulberry32: small, fast, good enough for test generation.
function prng(seed) {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
const rand = prng(SEED);
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (arr) => arr[int(0, arr.length - 1)];
const chance = (p) => rand() < p;

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
// name, min, max (accepted), open max ("*" and "N/S"), largest step, names
const FIELDS = [
	['minute', 0, 59, 59, 60, null],
	['hour', 0, 23, 23, 24, null],
	['dom', 1, 31, 31, 31, null],
	['month', 1, 12, 12, 12, MONTHS],
	['dow', 0, 7, 6, 7, DAYS],
];

function value(f, v) {
	const names = f[5];
	if (names && chance(0.3)) {
		const n = names[(v - f[1]) % names.length];
		return chance(0.5) ? n : n.toLowerCase();
	}
	return String(v);
}

function item(f) {
	const [, lo, hi, openHi, maxStep] = f;
	const r = rand();
	if (r < 0.35)
		return value(f, int(lo, hi));
	if (r < 0.55) {
		const a = int(lo, hi), b = int(a, hi);
		return `${value(f, a)}-${value(f, b)}`;
	}
	if (r < 0.7) {
		const a = int(lo, hi), b = int(a, hi);
		return `${a}-${b}/${int(1, Math.min(maxStep, 12))}`;
	}
	if (r < 0.85)
		return `*/${int(1, chance(0.2) ? maxStep : Math.min(maxStep, 15))}`;
	return `${int(lo, openHi)}/${int(1, Math.min(maxStep, 20))}`;
}

function field(f, starP) {
	if (chance(starP))
		return '*';
	const n = chance(0.75) ? 1 : int(2, 4);
	return Array.from({ length: n }, () => item(f)).join(',');
}

// Field shapes biased toward what people write: mostly single minutes and hours (fixed-time
// jobs, the interesting DST case), some steps and lists, often "*" for the day fields. With a
// DST change ahead (shift), the minute and hour often name a wall time that it skips or repeats.
function expression(shift) {
	const r = rand();
	if (r < 0.04)
		return pick(['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually']);
	if (r < 0.07)
		return `@every ${pick(['1s', '7s', '45s', '1m', '7m', '15m', '1h', '1h30m', '13h', '2d', '3600'])}`;
	if (r < 0.10)
		return invalidExpression();
	let minute = chance(0.6) ? String(int(0, 59)) : field(FIELDS[0], 0.15);
	let hour = chance(0.5) ? String(int(0, 23)) : field(FIELDS[1], 0.35);
	if (shift && chance(0.6)) {
		const w = new Date(int(shift.lo, shift.hi - 1) * 1000);	// a skipped or repeated wall time
		minute = String(w.getUTCMinutes());
		hour = String(w.getUTCHours());
		if (chance(0.3))
			minute = pick([`${minute},${(w.getUTCMinutes() + 30) % 60}`, '*/10', `${minute}-59/7`]);
		else if (chance(0.2))
			hour = pick([`${hour},${(w.getUTCHours() + 12) % 24}`, '*', `*/${int(1, 3)}`]);
	}
	const dom = field(FIELDS[2], shift ? 0.85 : 0.65);
	const month = field(FIELDS[3], shift ? 0.85 : 0.7);
	const dow = field(FIELDS[4], shift ? 0.85 : 0.7);
	return [minute, hour, dom, month, dow].join(' ');
}

function invalidExpression() {
	return pick([
		`${int(60, 99)} * * * *`, `* ${int(24, 40)} * * *`, `* * 0 * *`, `* * ${int(32, 40)} * *`,
		`* * * 13 * *`, `* * * * 8`, `${int(30, 59)}-${int(0, 29)} * * * *`, '*/0 * * * *',
		'*/61 * * * *', '* * * FOO *', '* * * *', 'x * * * *',
		'@fortnightly', '@every', '@every 0s', '* * * * * * * *',
	]);
}

// UTC offset (seconds) of zone at instant t (seconds), from ICU via Intl.
const fmtCache = new Map();
function offsetAt(zone, t) {
	let fmt = fmtCache.get(zone);
	if (!fmt) {
		fmt = new Intl.DateTimeFormat('en-US', {
			timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
			hour: 'numeric', minute: 'numeric', second: 'numeric',
		});
		fmtCache.set(zone, fmt);
	}
	const p = Object.fromEntries(fmt.formatToParts(new Date(t * 1000)).map((x) => [x.type, x.value]));
	return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000 - t;
}

// A start instant: uniform over the years, or a little before a change of offset. In the
// latter case shift gives the wall times [lo, hi) (local seconds) that the change skips or repeats.
function startFor(zone) {
	let t = int(FROM_MIN, FROM_MAX);
	if (zone === 'UTC' || chance(0.5))
		return { from: t };
	const off0 = offsetAt(zone, t);
	for (let day = 1; day <= 400; day++) {
		const u = t + day * 86400;
		const off1 = offsetAt(zone, u);
		if (off1 === off0)
			continue;
		let lo = u - 86400, hi = u;	// offset changes in (lo, hi]
		while (hi - lo > 1) {
			const mid = Math.floor((lo + hi) / 2);
			if (offsetAt(zone, mid) === off0)
				lo = mid;
			else
				hi = mid;
		}
		const a = hi + Math.min(off0, off1), b = hi + Math.max(off0, off1);
		return { from: hi - int(0, 6 * 3600), shift: { lo: a, hi: b } };
	}
	return { from: t };
}

const iso = (t) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');

// The values a day-of-month (lo 1, hi 31) or day-of-week (lo 0, hi 7, names) field covers.
const DAY_NAMES = { SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6 };
function covered(field, lo, hi) {
	const out = new Set();
	const num = (s) => (s.toUpperCase() in DAY_NAMES ? DAY_NAMES[s.toUpperCase()] : Number(s));
	for (const item of field.split(',')) {
		const [range, stepS] = item.split('/');
		const step = stepS ? Number(stepS) : 1;
		let a, b;
		if (range === '*') [a, b] = [lo, hi === 7 ? 6 : hi];
		else if (range.includes('-')) [a, b] = range.split('-').map(num);
		else [a, b] = [num(range), stepS ? (hi === 7 ? 6 : hi) : num(range)];
		for (let v = a; v <= b; v += step) out.add(hi === 7 && v === 7 ? 0 : v);
	}
	return out.size;
}

function croniterDays(expr) {
	const parts = expr.trim().split(/\s+/);
	if (parts.length !== 5 || expr.startsWith('@')) return expr;
	const [, , dom, , dow] = parts;
	if (dom !== '*' && covered(dom, 1, 31) === 31 && dow.includes('*')) parts[2] = '*';
	if (dow !== '*' && covered(dow, 0, 7) === 7 && dom.includes('*')) parts[4] = '*';
	return parts.join(' ');
}

function croner(expr, zone, from, n) {
	const pattern = croniterDays(expr);
	try {
		const job = new Cron(pattern, { timezone: zone, paused: true, sloppyRanges: true, mode: '5-part' });
		return job.nextRuns(n, new Date(from * 1000)).map((d) => iso(d.getTime() / 1000));
	} catch (e) {
		return { error: e.message };
	}
}

function expected(expr, zone, from, n) {
	const m = /^@every\s+(.*)$/.exec(expr);
	if (!m)
		return croner(expr, zone, from, n);
	const units = { d: 86400, h: 3600, m: 60, s: 1 };
	let period = 0;
	if (/^\d+$/.test(m[1]))
		period = Number(m[1]);
	else
		for (const [, v, u] of m[1].matchAll(/(\d+)([dhms])/g))
			period += Number(v) * units[u];
	if (!period)
		return { error: 'bad duration' };
	return Array.from({ length: n }, (_, i) => iso((Math.floor(from / period) + 1 + i) * period));
}

const cases = [];
for (let i = 0; i < CASES; i++) {
	const zone = pick(ZONES);
	const { from, shift } = startFor(zone);
	cases.push({ expr: expression(shift), zone, from, n: int(1, 12) });
}

const input = cases.map((c) => `${c.expr}\t${c.zone}\t${iso(c.from)}\t${c.n}`).join('\n') + '\n';
const run = spawnSync(binary, ['cron', 'next', '--batch'], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
if (run.status !== 0) {
	console.error(`sluice exited with status ${run.status} (signal ${run.signal}):\n${run.stderr}`);
	process.exit(1);
}
const lines = run.stdout.split('\n');

let passed = 0, failed = 0;
cases.forEach((c, i) => {
	const want = expected(c.expr, c.zone, c.from, c.n);
	const got = lines[i] ?? '';
	let ok;
	if (want.error)
		ok = got.startsWith('error: ');
	else
		ok = got === want.join(' ');
	if (ok) {
		passed++;
		return;
	}
	failed++;
	console.log(`MISMATCH #${i}: "${c.expr}" zone=${c.zone} from=${iso(c.from)} n=${c.n}`);
	console.log(`  croner: ${want.error ? 'error: ' + want.error : want.join(' ')}`);
	console.log(`  sluice: ${got}`);
});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
