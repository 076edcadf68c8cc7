// Go's number, boolean and time text, as sops and go-yaml produce and accept it. SOPS hashes and encrypts
// the Go text of a value (strconv.FormatFloat, time.MarshalText …), so a JS spelling that differs by one
// character (an exponent, milliseconds, `true` for `True`) gives another MAC or an unreadable value.
/** The range of Go's int on the 64-bit platforms sops runs on. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** The shortest round-trip digits and decimal exponent of a finite, non-zero |v| (d.ddd × 10^exp). */
function shortestDigits(v: number): { digits: string; exp: number } {
  // toExponential() without an argument gives as many digits as needed to identify the value, which is
  // the same shortest representation Go's strconv picks.
  const [mantissa, exponent] = Math.abs(v).toExponential().split('e') as [string, string];
  return { digits: mantissa.replace('.', ''), exp: Number(exponent) };
}

/** strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent (sops's float plaintext and MAC bytes). */
export function formatFloatF(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  if (v === 0) return `${sign}0`;
  const { digits, exp } = shortestDigits(v);
  let text: string;
  if (exp >= digits.length - 1) text = digits + '0'.repeat(exp - digits.length + 1);
  else if (exp >= 0) text = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  else text = `0.${'0'.repeat(-exp - 1)}${digits}`;
  return sign + text;
}

/** strconv.FormatFloat(v, 'g', -1, 64) with go-yaml's names for NaN and the infinities: how go-yaml writes a float. */
export function formatFloatYaml(v: number): string {
  if (Number.isNaN(v)) return '.nan';
  if (v === Infinity) return '.inf';
  if (v === -Infinity) return '-.inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const { digits, exp } = shortestDigits(v);
  // %g with the shortest precision switches to an exponent below 1e-4 and from 1e6 on.
  if (exp < -4 || exp >= 6) {
    const sign = v < 0 ? '-' : '';
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e}`;
  }
  return formatFloatF(v);
}

/** strconv.Atoi: optional sign and decimal digits, within int64. */
export function parseGoInt(text: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

/** strconv.ParseFloat(text, 64) for decimal text and inf/nan (hexadecimal floats are not accepted here). */
export function parseGoFloat(text: string): number | undefined {
  if (/^[+-]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text)) return undefined;
  const value = Number(text);
  // Go reports a range error where JS rounds to infinity.
  return Number.isFinite(value) ? value : undefined;
}

/** strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

interface GoTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Fraction digits as parsed, at most 9 (Go keeps nanoseconds). */
  fraction: string;
  /** Offset east of UTC in minutes. */
  offset: number;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function validTime(t: GoTime): boolean {
  return (
    t.month >= 1 &&
    t.month <= 12 &&
    t.day >= 1 &&
    t.day <= daysIn(t.month, t.year) &&
    t.hour < 24 &&
    t.minute < 60 &&
    t.second < 60
  );
}

const pad2 = (n: number): string => n.toString().padStart(2, '0');

function formatZone(offset: number): string {
  if (offset === 0) return 'Z';
  const abs = Math.abs(offset);
  return `${offset < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/** time.Time.MarshalText: RFC 3339 with nanoseconds, trailing zeros dropped, Z for a zero offset. */
function marshalText(t: GoTime): string {
  const fraction = t.fraction.padEnd(9, '0').replace(/0+$/, '');
  const date = `${t.year.toString().padStart(4, '0')}-${pad2(t.month)}-${pad2(t.day)}`;
  return `${date}T${pad2(t.hour)}:${pad2(t.minute)}:${pad2(t.second)}${fraction ? `.${fraction}` : ''}${formatZone(t.offset)}`;
}

function parseOffset(zone: string): number {
  if (zone === 'Z') return 0;
  const minutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
  return zone.startsWith('-') ? -minutes : minutes;
}

const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})$/;

/** time.Parse(time.RFC3339, …) of the strict form, or undefined. */
function parseRfc3339(text: string): GoTime | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const zone = m[8]!;
  if (zone !== 'Z' && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) return undefined;
  const t: GoTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4]),
    minute: Number(m[5]),
    second: Number(m[6]),
    fraction: (m[7] ?? '').slice(0, 9),
    offset: parseOffset(zone),
  };
  return validTime(t) ? t : undefined;
}

/** A `type:time` plaintext after time.UnmarshalText and MarshalText again (its MAC bytes), or undefined. */
export function canonicalTimeText(text: string): string | undefined {
  const t = parseRfc3339(text);
  return t ? marshalText(t) : undefined;
}

/**
 * `lastmodified` as sops uses it for the MAC's AAD: parsed as RFC 3339 and formatted again without
 * fractional seconds (`2024-11-12T13:33:42.123Z` is used as `2024-11-12T13:33:42Z`). Undefined when sops
 * would refuse to load the file.
 */
export function lastModifiedAad(text: string): string | undefined {
  const t = parseRfc3339(text);
  if (!t) return undefined;
  return marshalText({ ...t, fraction: '' });
}

/** `lastmodified` for a new file: UTC, whole seconds, `Z` (never JS's `.sssZ`). */
export function formatLastModified(date: Date): string {
  return date.toISOString().replace(/\.[0-9]{3}Z$/, 'Z');
}

// go-yaml's parseTimestamp: a plain scalar starting with four digits and '-' is tried against these
// time.Parse layouts: 1–2 digit month, day, hour, minute and second; T, t or a space; a zone (Z or ±hh:mm)
// only after T/t; up to 9 fraction digits kept (more are read and dropped), '.' or ','.
const YAML_TIMESTAMP =
  /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,]([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?)?$/;

/** The MarshalText form of a plain YAML scalar go-yaml v3 reads as a timestamp, or undefined. */
export function yamlTimestampText(text: string): string | undefined {
  const m = YAML_TIMESTAMP.exec(text);
  if (!m) return undefined;
  const separator = m[4];
  const zone = m[9];
  if (separator === ' ' && zone !== undefined) return undefined;
  if ((separator === 'T' || separator === 't') && zone === undefined) return undefined;
  // Go reads the zone as 2+2 digits and refuses an hour above 24 or minutes above 60.
  if (zone !== undefined && zone !== 'Z' && (Number(zone.slice(1, 3)) > 24 || Number(zone.slice(4, 6)) > 60)) return undefined;
  const t: GoTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[5] ?? 0),
    minute: Number(m[6] ?? 0),
    second: Number(m[7] ?? 0),
    fraction: (m[8] ?? '').slice(0, 9),
    offset: zone === undefined ? 0 : parseOffset(zone),
  };
  return validTime(t) ? marshalText(t) : undefined;
}
