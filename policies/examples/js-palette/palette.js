// team-palette: a team policy written in JavaScript, built with
// @bytecodealliance/componentize-js (see build.mjs).
//
// Rule: every colour a `set_material` op sets (`base_color`, `emission`)
// comes from the team's approved palette, within a tolerance; roughness and
// metallic stay within the ranges the art director signed off.
//
// The op's arguments arrive as canonical CBOR (`intent.payloadCbor`),
// decoded by `decodeCbor` below into plain values. Configuration reaches
// `evaluate` as JSON-pointer leaves:
//   /palette/<name>/<i>   approved linear RGB(A) colours, e.g.
//                         [policies.config.team-palette.palette]
//                         brand-red = [0.8, 0.05, 0.05, 1.0]
//   /tolerance            largest per-channel difference accepted (default 0.02)
//   /roughness-min, /roughness-max, /metallic-max
//   /probe                reviewer self-check: `clock` or `random`; the
//                         policy tries the capability and escalates with
//                         what it got (rules probe-denied, probe-leak,
//                         probe-observed). There is no network probe: the
//                         component is built without wasi:http (see
//                         build.mjs) and imports no wasi:sockets, which
//                         `vibesync policy inspect` shows.
// Without a palette in the configuration the DEFAULT_PALETTE below applies.
//
// The host evaluates every op in a fresh instance: nothing kept in module
// globals survives to the next evaluation.

import { log } from 'vibesync:policy/host@0.1.0';

const NAME = 'team-palette';

const DEFAULT_PALETTE = {
  'neutral-white': [0.9, 0.9, 0.9, 1.0],
  'neutral-grey': [0.18, 0.18, 0.18, 1.0],
  'brand-red': [0.8, 0.05, 0.05, 1.0],
  'brand-teal': [0.0, 0.45, 0.5, 1.0],
  'black': [0.0, 0.0, 0.0, 1.0],
};

const RULES = [
  ['off-palette', 'base_color and emission come from the approved palette'],
  ['roughness-range', 'roughness stays within the approved range'],
  ['metallic-range', 'metallic stays at or below the approved maximum'],
  ['bad-config', "the policy's configuration has the documented types"],
  ['probe-denied', 'reviewer self-check: the host refused the probed capability'],
  ['probe-leak', 'reviewer self-check: the probed capability reached outside the sandbox'],
  ['probe-observed', 'reviewer self-check: what the probed capability returned'],
];

function finding(rule, path, message, severity = 'error') {
  return { rule: `${NAME}.${rule}`, severity, path, message };
}

/** Number value of a scalar (integer values arrive as bigint), else undefined. */
function num(scalar) {
  if (scalar.tag === 'float') return scalar.val;
  if (scalar.tag === 'integer') return Number(scalar.val);
  return undefined;
}

/** Leaves under `prefix` as { rest-of-path: scalar }. */
function under(leaves, prefix) {
  const out = new Map();
  for (const leaf of leaves) {
    if (leaf.path.startsWith(prefix)) out.set(leaf.path.slice(prefix.length), leaf.value);
  }
  return out;
}

/**
 * The one item of canonical CBOR (RFC 8949) `bytes` holds, as plain JS
 * values: the host sends an op's arguments this way (`intent.payloadCbor`).
 * Maps with text keys, arrays, text, byte strings, integers, half/single/
 * double floats, booleans and null; no indefinite lengths, no tags.
 */
function decodeCbor(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  const need = (n) => {
    if (i + n > bytes.length) throw new Error('truncated CBOR');
  };
  const half = (h) => {
    const exp = (h >> 10) & 31;
    const frac = h & 1023;
    const sign = h & 32768 ? -1 : 1;
    if (exp === 0) return sign * frac * 2 ** -24;
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * 2 ** (exp - 15);
  };
  const item = () => {
    need(1);
    const major = bytes[i] >> 5;
    const info = bytes[i] & 31;
    i += 1;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22 || info === 23) return null;
      const sizes = { 25: 2, 26: 4, 27: 8 };
      const size = sizes[info];
      if (!size) throw new Error(`unsupported CBOR simple value ${info}`);
      need(size);
      const v = size === 2 ? half(view.getUint16(i)) : size === 4 ? view.getFloat32(i) : view.getFloat64(i);
      i += size;
      return v;
    }
    let n = info;
    if (info >= 24 && info <= 27) {
      const size = 1 << (info - 24);
      need(size);
      n = 0;
      for (let k = 0; k < size; k++) n = n * 256 + bytes[i + k];
      i += size;
    } else if (info > 27) {
      throw new Error('indefinite CBOR lengths are not canonical');
    }
    switch (major) {
      case 0: return n;
      case 1: return -1 - n;
      case 2: need(n); i += n; return bytes.slice(i - n, i);
      case 3: need(n); i += n; return new TextDecoder().decode(bytes.subarray(i - n, i));
      case 4: { const a = []; for (let k = 0; k < n; k++) a.push(item()); return a; }
      case 5: { const m = {}; for (let k = 0; k < n; k++) { const key = item(); m[key] = item(); } return m; }
      default: throw new Error('CBOR tags are not used by the host');
    }
  };
  const value = item();
  if (i !== bytes.length) throw new Error(`${bytes.length - i} trailing bytes after the CBOR item`);
  return value;
}

/** A colour argument (a list of numbers) or undefined. */
function colourArg(args, key) {
  const v = args[key];
  return Array.isArray(v) && v.every((c) => typeof c === 'number') ? v : undefined;
}

function readPalette(config) {
  const entries = under(config, '/palette/');
  if (entries.size === 0) return { palette: DEFAULT_PALETTE };
  const palette = {};
  for (const [rest, scalar] of entries) {
    const [name, index] = rest.split('/');
    const value = num(scalar);
    if (index === undefined || value === undefined) {
      return { error: finding('bad-config', `/palette/${rest}`, 'palette entries are lists of numbers, e.g. brand-red = [0.8, 0.05, 0.05, 1.0]') };
    }
    (palette[name] ??= [])[Number(index)] = value;
  }
  return { palette };
}

function numberConfig(config, path, fallback) {
  const leaf = config.find((l) => l.path === path);
  if (!leaf) return { value: fallback };
  const value = num(leaf.value);
  if (value === undefined) return { error: finding('bad-config', path, `\`${path.slice(1)}\` must be a number`) };
  return { value };
}

function nearest(colour, palette) {
  let best = { name: undefined, distance: Infinity };
  for (const [name, approved] of Object.entries(palette)) {
    let d = 0;
    for (let i = 0; i < colour.length; i++) d = Math.max(d, Math.abs(colour[i] - (approved[i] ?? 1.0)));
    if (d < best.distance) best = { name, distance: d };
  }
  return best;
}

function probe(what) {
  const say = (rule, message) => ({ tag: 'escalate', val: [finding(rule, '', message, 'info')] });
  switch (what) {
    case 'clock': {
      const now = Date.now();
      return now < 1000
        ? say('probe-denied', `clock: Date.now() = ${now}, frozen at the Unix epoch`)
        : say('probe-leak', `clock: Date.now() = ${now}, real time`);
    }
    case 'random': {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      return say('probe-observed', `random: crypto.getRandomValues(16) = ${hex}; Math.random() = ${Math.random()}`);
    }
    default:
      return { tag: 'deny', val: [finding('bad-config', '/probe', `unknown probe \`${what}\`: use clock or random`)] };
  }
}

export const evaluator = {
  metadata() {
    return {
      name: NAME,
      version: '0.1.0',
      description: 'Material colours come from the approved palette; roughness and metallic stay in range.',
      rules: RULES.map(([id, description]) => ({ id: `${NAME}.${id}`, description })),
    };
  },

  evaluate(intent, context, config) {
    const probeLeaf = config.find((l) => l.path === '/probe');
    if (probeLeaf) {
      if (probeLeaf.value.tag !== 'text') return { tag: 'deny', val: [finding('bad-config', '/probe', '`probe` must be text')] };
      return probe(probeLeaf.value.val);
    }
    if (intent.op !== 'set_material') return { tag: 'allow' };

    const { palette, error } = readPalette(config);
    const tolerance = numberConfig(config, '/tolerance', 0.02);
    const roughnessMin = numberConfig(config, '/roughness-min', 0.0);
    const roughnessMax = numberConfig(config, '/roughness-max', 1.0);
    const metallicMax = numberConfig(config, '/metallic-max', 1.0);
    const bad = [error, tolerance.error, roughnessMin.error, roughnessMax.error, metallicMax.error].filter(Boolean);
    if (bad.length) return { tag: 'deny', val: bad };

    const args = decodeCbor(intent.payloadCbor) ?? {};
    const findings = [];
    for (const path of ['/base_color', '/emission']) {
      const colour = colourArg(args, path.slice(1));
      if (!colour) continue;
      if (path === '/emission' && colour.every((c) => c === 0)) continue; // no emission is always fine
      const best = nearest(colour, palette);
      if (best.distance > tolerance.value) {
        const approved = Object.keys(palette).join(', ');
        findings.push(finding('off-palette', path,
          `colour [${colour.join(', ')}] is not in the approved palette (nearest: ${best.name}, off by ${best.distance.toFixed(3)}); use one of: ${approved}`));
      }
    }
    const roughness = args.roughness;
    if (typeof roughness === 'number' && (roughness < roughnessMin.value || roughness > roughnessMax.value)) {
      findings.push(finding('roughness-range', '/roughness',
        `roughness ${roughness} is outside the approved range [${roughnessMin.value}, ${roughnessMax.value}]`));
    }
    const metallic = args.metallic;
    if (typeof metallic === 'number' && metallic > metallicMax.value) {
      findings.push(finding('metallic-range', '/metallic', `metallic ${metallic} is above the approved maximum ${metallicMax.value}`));
    }
    if (findings.length) {
      log('info', `${findings.length} finding(s) for tid ${intent.tid}`);
      return { tag: 'deny', val: findings };
    }
    return { tag: 'allow' };
  },
};
