/**
 * Sprig's date functions over a Go-like time value: `now` is the real clock,
 * layouts are Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`),
 * durations print and parse as Go's time.Duration does.
 */
import type { GoStringer, TemplateFunc } from '../template/exec.js';
import { str, toInt } from './convert.js';

/** A zone: UTC, the process's local zone, or an IANA name. */
type Zone = { kind: 'utc' } | { kind: 'local' } | { kind: 'iana'; name: string } | { kind: 'fixed'; offset: number };
const UTC: Zone = { kind: 'utc' };
const LOCAL: Zone = { kind: 'local' };

function zoneOf(name: string): Zone | undefined {
  if (name === 'UTC' || name === '') return UTC;
  if (name === 'Local') return LOCAL;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return { kind: 'iana', name };
  } catch {
    return undefined;
  }
}

/** Offset east of UTC in minutes, and the zone's abbreviation, at an instant. */
function zoneAt(zone: Zone, ms: number): { offset: number; abbrev: string } {
  if (zone.kind === 'utc') return { offset: 0, abbrev: 'UTC' };
  // a parsed offset that is not the zone's own: Go's FixedZone("", offset), which prints as the offset
  if (zone.kind === 'fixed') return { offset: zone.offset, abbrev: goOffset(zone.offset, '') };
  const timeZone = zone.kind === 'iana' ? zone.name : undefined;
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }).formatToParts(ms);
  const long = parts.find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([-+])(\d{2}):(\d{2})/.exec(long);
  const offset = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  const short = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'short' }).formatToParts(ms).find((p) => p.type === 'timeZoneName')?.value ?? '';
  // Go names a zone without an abbreviation by its offset (-0700 style → "-07")
  const abbrev = offset === 0 && (short === 'UTC' || short === 'GMT') ? 'UTC' : /^[A-Z]{3,5}$/.test(short) ? short : goOffset(offset, '', false).slice(0, 3);
  return { offset, abbrev };
}

function goOffset(minutes: number, sep: string, withMinutes = true): string {
  const sign = minutes < 0 ? '-' : '+';
  const a = Math.abs(minutes);
  const h = String(Math.floor(a / 60)).padStart(2, '0');
  const m = String(a % 60).padStart(2, '0');
  return withMinutes ? `${sign}${h}${sep}${m}` : `${sign}${h}`;
}

/** time.Time: an instant (milliseconds and the nanoseconds below them) in a zone. */
export class GoTime implements GoStringer {
  constructor(
    readonly ms: number,
    readonly zone: Zone = LOCAL,
    readonly subMsNanos = 0,
  ) {}
  static now(): GoTime {
    const ns = process.hrtime.bigint() % 1_000_000n;
    return new GoTime(Date.now(), LOCAL, Number(ns));
  }
  in(zone: Zone): GoTime {
    return new GoTime(this.ms, zone, this.subMsNanos);
  }
  add(nanos: number): GoTime {
    const total = this.subMsNanos + nanos;
    const ms = Math.floor(total / 1e6);
    return new GoTime(this.ms + ms, this.zone, total - ms * 1e6);
  }
  /** Calendar fields in the time's zone. */
  fields() {
    const { offset, abbrev } = zoneAt(this.zone, this.ms);
    const d = new Date(this.ms + offset * 60_000);
    const nanos = d.getUTCMilliseconds() * 1e6 + this.subMsNanos;
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      weekday: d.getUTCDay(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      nanos,
      yearDay: Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1,
      offset,
      abbrev,
    };
  }
  Format(layout: unknown): string {
    return formatTime(this, str(layout));
  }
  Unix(): number {
    return Math.floor(this.ms / 1000);
  }
  UnixNano(): number {
    return this.ms * 1e6 + this.subMsNanos;
  }
  UTC(): GoTime {
    return this.in(UTC);
  }
  Local(): GoTime {
    return this.in(LOCAL);
  }
  Year(): number {
    return this.fields().year;
  }
  /** fmt's %v of a time.Time. */
  goString(): string {
    return formatTime(this, '2006-01-02 15:04:05.999999999 -0700 MST');
  }
  /** encoding/json writes RFC 3339 with nanoseconds. */
  toJSON(): string {
    return formatTime(this, '2006-01-02T15:04:05.999999999Z07:00');
  }
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Go's layout elements, longest first where one is a prefix of another (time/format.go nextStdChunk). */
const ELEMENTS = [
  'January',
  'Jan',
  'Monday',
  'Mon',
  'MST',
  '2006',
  '002',
  '01',
  '02',
  '03',
  '04',
  '05',
  '06',
  '__2',
  '_2',
  '15',
  '1',
  '2',
  '3',
  '4',
  '5',
  'PM',
  'pm',
  'Z070000',
  'Z07:00:00',
  'Z0700',
  'Z07:00',
  'Z07',
  '-070000',
  '-07:00:00',
  '-0700',
  '-07:00',
  '-07',
];

/** The layout cut into literal text and elements. */
function layoutChunks(layout: string): Array<{ el: string } | { text: string }> {
  const out: Array<{ el: string } | { text: string }> = [];
  let text = '';
  for (let i = 0; i < layout.length; ) {
    // fractional seconds: .000 / ,000 (fixed) or .999 (trimmed), only after a digit element
    const frac = /^[.,](0+|9+)(?![0-9])/.exec(layout.slice(i));
    if (frac) {
      if (text) out.push({ text });
      text = '';
      out.push({ el: frac[0] });
      i += frac[0].length;
      continue;
    }
    const el = ELEMENTS.find((e) => layout.startsWith(e, i));
    if (el) {
      if (text) out.push({ text });
      text = '';
      out.push({ el });
      i += el.length;
    } else {
      text += layout[i];
      i++;
    }
  }
  if (text) out.push({ text });
  return out;
}

export function formatTime(t: GoTime, layout: string): string {
  const f = t.fields();
  const p2 = (n: number) => String(n).padStart(2, '0');
  let out = '';
  for (const c of layoutChunks(layout)) {
    if ('text' in c) {
      out += c.text;
      continue;
    }
    const e = c.el;
    if (/^[.,]/.test(e)) {
      const digits = String(f.nanos)
        .padStart(9, '0')
        .slice(0, e.length - 1);
      if (e[1] === '0') out += e[0] + digits;
      else {
        const trimmed = digits.replace(/0+$/, '');
        if (trimmed) out += e[0] + trimmed;
      }
      continue;
    }
    switch (e) {
      case 'January':
        out += MONTHS[f.month - 1];
        break;
      case 'Jan':
        out += MONTHS[f.month - 1]!.slice(0, 3);
        break;
      case 'Monday':
        out += DAYS[f.weekday];
        break;
      case 'Mon':
        out += DAYS[f.weekday]!.slice(0, 3);
        break;
      case 'MST':
        out += f.abbrev;
        break;
      case '2006':
        out += String(f.year).padStart(4, '0');
        break;
      case '06':
        out += p2(f.year % 100);
        break;
      case '01':
        out += p2(f.month);
        break;
      case '1':
        out += String(f.month);
        break;
      case '02':
        out += p2(f.day);
        break;
      case '_2':
        out += String(f.day).padStart(2, ' ');
        break;
      case '2':
        out += String(f.day);
        break;
      case '002':
        out += String(f.yearDay).padStart(3, '0');
        break;
      case '__2':
        out += String(f.yearDay).padStart(3, ' ');
        break;
      case '15':
        out += p2(f.hour);
        break;
      case '03':
        out += p2(f.hour % 12 || 12);
        break;
      case '3':
        out += String(f.hour % 12 || 12);
        break;
      case '04':
        out += p2(f.minute);
        break;
      case '4':
        out += String(f.minute);
        break;
      case '05':
        out += p2(f.second);
        break;
      case '5':
        out += String(f.second);
        break;
      case 'PM':
        out += f.hour >= 12 ? 'PM' : 'AM';
        break;
      case 'pm':
        out += f.hour >= 12 ? 'pm' : 'am';
        break;
      default: {
        // zones: Z… writes Z for UTC, -… always the offset
        if (e.startsWith('Z') && f.offset === 0) {
          out += 'Z';
          break;
        }
        const sep = e.includes(':') ? ':' : '';
        const body = e.slice(1);
        out += body.length <= 2 ? goOffset(f.offset, '', false) : goOffset(f.offset, sep) + (body.replaceAll(':', '').length === 6 ? `${sep}00` : '');
      }
    }
  }
  return out;
}

/** time.ParseInLocation for the common layout elements; undefined when the text does not fit. */
export function parseTime(layout: string, text: string, zone: Zone): GoTime | undefined {
  let rest = text;
  let year = 1;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0;
  let pm: boolean | undefined;
  let offset: number | undefined;
  const num = (min: number, max: number): number | undefined => {
    const m = new RegExp(`^[0-9]{${min},${max}}`).exec(rest);
    if (!m) return undefined;
    rest = rest.slice(m[0].length);
    return Number(m[0]);
  };
  for (const c of layoutChunks(layout)) {
    if ('text' in c) {
      if (!rest.startsWith(c.text)) return undefined;
      rest = rest.slice(c.text.length);
      continue;
    }
    const e = c.el;
    let v: number | undefined = 0;
    if (/^[.,]/.test(e)) {
      const m = /^[.,]([0-9]+)/.exec(rest);
      if (m) {
        nanos = Number(m[1]!.slice(0, 9).padEnd(9, '0'));
        rest = rest.slice(m[0].length);
      } else if (e[1] === '0') return undefined;
      continue;
    }
    switch (e) {
      case 'January':
      case 'Jan': {
        const i = MONTHS.findIndex((name) => rest.startsWith(e === 'Jan' ? name.slice(0, 3) : name));
        if (i < 0) return undefined;
        month = i + 1;
        rest = rest.slice(e === 'Jan' ? 3 : MONTHS[i]!.length);
        break;
      }
      case 'Monday':
      case 'Mon': {
        const i = DAYS.findIndex((name) => rest.startsWith(e === 'Mon' ? name.slice(0, 3) : name));
        if (i < 0) return undefined;
        rest = rest.slice(e === 'Mon' ? 3 : DAYS[i]!.length);
        break;
      }
      case 'MST': {
        const m = /^[A-Z]{3,5}/.exec(rest);
        if (!m) return undefined;
        if (m[0] === 'UTC' || m[0] === 'GMT') offset = 0;
        rest = rest.slice(m[0].length);
        break;
      }
      case '2006':
        v = num(4, 4);
        if (v === undefined) return undefined;
        year = v;
        break;
      case '06':
        v = num(2, 2);
        if (v === undefined) return undefined;
        year = v >= 69 ? 1900 + v : 2000 + v;
        break;
      case '01':
      case '1':
        v = num(e === '01' ? 2 : 1, 2);
        if (v === undefined || v < 1 || v > 12) return undefined;
        month = v;
        break;
      case '02':
      case '2':
      case '_2':
        if (e === '_2' && rest.startsWith(' ')) rest = rest.slice(1);
        v = num(e === '02' ? 2 : 1, 2);
        if (v === undefined || v < 1 || v > 31) return undefined;
        day = v;
        break;
      case '15':
        v = num(1, 2);
        if (v === undefined || v > 23) return undefined;
        hour = v;
        break;
      case '03':
      case '3':
        v = num(e === '03' ? 2 : 1, 2);
        if (v === undefined || v < 1 || v > 12) return undefined;
        hour = v;
        break;
      case '04':
      case '4':
        v = num(e === '04' ? 2 : 1, 2);
        if (v === undefined || v > 59) return undefined;
        minute = v;
        break;
      case '05':
      case '5':
        v = num(e === '05' ? 2 : 1, 2);
        if (v === undefined || v > 59) return undefined;
        second = v;
        // fractional seconds after seconds are accepted even when the layout has none
        if (/^[.,][0-9]/.test(rest) && !/^[.,]/.test(layout.slice(layout.indexOf(e) + e.length))) {
          const m = /^[.,]([0-9]+)/.exec(rest)!;
          nanos = Number(m[1]!.slice(0, 9).padEnd(9, '0'));
          rest = rest.slice(m[0].length);
        }
        break;
      case 'PM':
      case 'pm': {
        const m = /^(AM|PM|am|pm)/.exec(rest);
        if (!m) return undefined;
        pm = m[0].toUpperCase() === 'PM';
        rest = rest.slice(2);
        break;
      }
      default: {
        if (e.startsWith('Z') && rest.startsWith('Z')) {
          offset = 0;
          rest = rest.slice(1);
          break;
        }
        const m = /^([-+])([0-9]{2}):?([0-9]{2})?(?::?([0-9]{2}))?/.exec(rest);
        if (!m) return undefined;
        offset = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0));
        rest = rest.slice(m[0].length);
      }
    }
  }
  if (rest !== '') return undefined;
  if (pm !== undefined) hour = (hour % 12) + (pm ? 12 : 0);
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const at = new Date(wall);
  at.setUTCFullYear(year);
  let ms = at.getTime();
  if (offset !== undefined) ms -= offset * 60_000;
  else ms -= zoneAt(zone, ms - zoneAt(zone, ms).offset * 60_000).offset * 60_000;
  const ms0 = Math.floor(nanos / 1e6);
  let at2: Zone = zone;
  if (offset === 0) at2 = UTC;
  else if (offset !== undefined && zoneAt(zone, ms).offset !== offset) at2 = { kind: 'fixed', offset };
  return new GoTime(ms + ms0, at2, nanos - ms0 * 1e6);
}

// --- durations

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** time.ParseDuration, in nanoseconds; undefined when invalid. */
export function parseDuration(s: string): number | undefined {
  const m = /^([-+]?)((?:[0-9]*(?:\.[0-9]*)?(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) return s === '0' || s === '+0' || s === '-0' ? 0 : undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/g)) {
    if (part[1] === '' || part[1] === '.') return undefined;
    total += Number(part[1]) * UNITS[part[2]!]!;
  }
  return Math.round(m[1] === '-' ? -total : total);
}

/** time.Duration.String. */
export function formatDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(Math.round(ns));
  let out: string;
  if (u < 1e9) {
    const [unit, scale] = u < 1e3 ? ['ns', 1] : u < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = `${trimFraction(u / (scale as number))}${unit}`;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    const s = trimFraction(u / 1e9);
    out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
  }
  return neg ? `-${out}` : out;
}

function trimFraction(n: number): string {
  return n.toFixed(9).replace(/0+$/, '').replace(/\.$/, '');
}

// --- the template functions

function toTime(v: unknown): GoTime {
  if (v instanceof GoTime) return v;
  // sprig takes ints as Unix seconds and anything else as now
  if (typeof v === 'number') return new GoTime(toInt(v) * 1000);
  return GoTime.now();
}

function formatIn(layout: unknown, date: unknown, zone: unknown): string {
  return formatTime(toTime(date).in(zoneOf(str(zone)) ?? UTC), str(layout));
}

function dateModify(spec: unknown, date: unknown, must: boolean): GoTime {
  const d = parseDuration(str(spec));
  const t = toTime(date);
  if (d === undefined) {
    // a plain Error: the executor words it as Go does, "error calling mustDateModify: …"
    if (must) throw new Error(`time: invalid duration ${JSON.stringify(str(spec))}`);
    return t;
  }
  return t.add(d);
}

function toDate(layout: unknown, value: unknown, must: boolean): GoTime {
  const t = parseTime(str(layout), str(value), LOCAL);
  if (t) return t;
  if (must)
    throw new Error(
      `parsing time ${JSON.stringify(str(value))} as ${JSON.stringify(str(layout))}: cannot parse ${JSON.stringify(str(value))} as ${JSON.stringify(str(layout))}`,
    );
  // Go's zero time, 0001-01-01 00:00:00 UTC
  const zero = new Date(0);
  zero.setUTCFullYear(1, 0, 1);
  return new GoTime(zero.getTime(), UTC);
}

/** durationRound: the largest whole unit (y, mo, d, h, m, s) of a duration. */
function durationRound(v: unknown): string {
  let ns = 0;
  if (typeof v === 'string') ns = parseDuration(v) ?? 0;
  else if (typeof v === 'number') ns = v;
  else if (v instanceof GoTime) ns = (Date.now() - v.ms) * 1e6;
  const u = Math.abs(ns);
  const hour = 3600e9;
  const steps: Array<[number, string]> = [
    [hour * 24 * 365, 'y'],
    [hour * 24 * 30, 'mo'],
    [hour * 24, 'd'],
    [hour, 'h'],
    [60e9, 'm'],
    [1e9, 's'],
  ];
  for (const [size, unit] of steps) if (u > size) return `${Math.floor(u / size)}${unit}`;
  return '0s';
}

export function dateFuncs(): Record<string, TemplateFunc> {
  return {
    now: () => GoTime.now(),
    date: (layout: unknown, date: unknown) => formatIn(layout, date, 'Local'),
    dateInZone: (layout: unknown, date: unknown, zone: unknown) => formatIn(layout, date, zone),
    date_in_zone: (layout: unknown, date: unknown, zone: unknown) => formatIn(layout, date, zone),
    htmlDate: (date: unknown) => formatIn('2006-01-02', date, 'Local'),
    htmlDateInZone: (date: unknown, zone: unknown) => formatIn('2006-01-02', date, zone),
    dateModify: (spec: unknown, date: unknown) => dateModify(spec, date, false),
    date_modify: (spec: unknown, date: unknown) => dateModify(spec, date, false),
    mustDateModify: (spec: unknown, date: unknown) => dateModify(spec, date, true),
    must_date_modify: (spec: unknown, date: unknown) => dateModify(spec, date, true),
    toDate: (layout: unknown, value: unknown) => toDate(layout, value, false),
    mustToDate: (layout: unknown, value: unknown) => toDate(layout, value, true),
    unixEpoch: (date: unknown) => String(toTime(date).Unix()),
    ago: (date: unknown) => formatDuration(Math.round((Date.now() - toTime(date).ms) / 1000) * 1e9),
    duration: (sec: unknown) => formatDuration((typeof sec === 'string' ? Number.parseInt(sec, 10) || 0 : toInt(sec)) * 1e9),
    durationRound: (v: unknown) => durationRound(v),
  };
}
