// `netrr run CONFIG`: the daemon's configuration, YAML or JSON, validated
// whole before anything starts. Each instance's keys are the long options of
// the single-instance command of the same kind (`primary-in`,
// `compare-timeout`, `failover-link`, …), so a command line moves into a
// config file key for key. A chain's filters come as the CLI's strings
// (`filter:`) or as objects (`filters:`) whose keys are the -f properties.
// A mistake is one line per problem: where in the file, what was expected,
// what was found (`instances[2].filters[0].interval: expected a positive
// integer (µs), got -5`).

import { readFileSync } from 'node:fs';
import { YAMLParseError, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { NetrrError, fromSystemError } from '../errors.ts';

const positiveInt = (what: string) => z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` }).positive({ error: `expected ${what}` });
const spec = z.string({ error: 'expected an endpoint spec (unix:PATH[,server=on] | tcp:HOST:PORT[,server=on] | udp:… | tap:IFNAME…)' }).min(1, { error: 'expected an endpoint spec' });
const text = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
const onOff = z.union([z.boolean(), z.enum(['on', 'off'])], { error: 'expected on, off, true or false' });
const name = z.string({ error: 'expected a name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected a name of letters, digits, ".", "_" or "-" (at most 64)' });

const common = {
  id: text('a filter id').optional(),
  queue: z.enum(['all', 'rx', 'tx'], { error: 'expected all, rx or tx' }).optional(),
  status: onOff.optional(),
  position: text('head, tail or id=ID').optional(),
  insert: z.enum(['before', 'behind'], { error: 'expected before or behind' }).optional(),
};

/** A -f filter as an object: `kind` and the filter's properties (src/engine/filters/filter-spec.ts). */
const filterObject = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('buffer'),
      ...common,
      mode: z.enum(['epochs', 'plug', 'interval'], { error: 'expected epochs, plug or interval' }).optional(),
      'limit-frames': positiveInt('a positive integer (frames)').optional(),
      'limit-bytes': positiveInt('a positive integer (bytes)').optional(),
      overflow: z.enum(['drop-tail', 'checkpoint', 'backpressure'], { error: 'expected drop-tail, checkpoint or backpressure' }).optional(),
      'hard-limit-bytes': positiveInt('a positive integer (bytes)').optional(),
      limit: positiveInt('a positive integer (bytes)').optional(),
      interval: positiveInt('a positive integer (µs)').optional(),
      'on-shutdown': z.enum(['drop', 'release'], { error: 'expected drop or release' }).optional(),
    }),
    z.strictObject({ kind: z.literal('dump'), ...common, file: text('a file name'), maxlen: positiveInt('a positive integer (bytes)').optional() }),
    z.strictObject({ kind: z.literal('mirror'), ...common, outdev: spec, vnet_hdr_support: onOff.optional() }),
    z.strictObject({ kind: z.literal('redirector'), ...common, indev: spec.optional(), outdev: spec.optional(), vnet_hdr_support: onOff.optional() }),
    z.strictObject({ kind: z.literal('record'), ...common, log: text('a log file name'), sync: text('none, always or interval:MS').optional(), 'segment-bytes': positiveInt('a positive integer (bytes)').optional(), order: z.enum(['log-first', 'forward-first'], { error: 'expected log-first or forward-first' }).optional() }),
    z.strictObject({ kind: z.literal('rewriter'), ...common, mode: z.enum(['qemu', 'extended'], { error: 'expected qemu or extended' }).optional(), 'ts-offset': onOff.optional(), vnet_hdr_support: onOff.optional() }),
  ],
  { error: 'expected a filter kind: buffer, dump, mirror, redirector, record or rewriter' },
);

const compare = z.strictObject({
  name,
  kind: z.literal('compare'),
  'primary-in': spec,
  'secondary-in': spec,
  outdev: spec,
  'notify-dev': spec.optional(),
  qmp: spec.optional(),
  'vnet-hdr-support': z.boolean({ error: 'expected true or false' }).optional(),
  'compare-timeout': positiveInt('a positive integer (ms)').optional(),
  'expired-scan-cycle': positiveInt('a positive integer (ms)').optional(),
  'max-queue-size': positiveInt('a positive integer (packets)').optional(),
  'max-connections': positiveInt('a positive integer').optional(),
  'max-queued-bytes': positiveInt('a positive integer (bytes)').optional(),
  mode: z.enum(['qemu', 'extended'], { error: 'expected qemu or extended' }).optional(),
  normalize: text('a normalizer list').optional(),
  bypass: z.array(text('a bypass rule'), { error: 'expected a list of bypass rules' }).optional(),
  report: text('a file name').optional(),
  'report-pcap': text('a file name').optional(),
});

const chain = z.strictObject({
  name,
  kind: z.literal('chain'),
  guest: spec,
  upstream: spec,
  filter: z.array(text('a filter as on the command line (KIND,prop=value,…)'), { error: 'expected a list of filters as on the command line' }).optional(),
  filters: z.array(filterObject, { error: 'expected a list of filter objects' }).optional(),
  'failover-link': text('IFACE[,after-ms=N]').optional(),
});

const record = z.strictObject({
  name,
  kind: z.literal('record'),
  guest: spec,
  upstream: spec,
  log: text('a log file name'),
  sync: text('none, always or interval:MS').optional(),
  'segment-bytes': positiveInt('a positive integer (bytes)').optional(),
  order: z.enum(['log-first', 'forward-first'], { error: 'expected log-first or forward-first' }).optional(),
});

const bridge = z.strictObject({ name, kind: z.literal('bridge'), a: spec, b: spec, capture: text('a file name').optional() });

const instance = z.discriminatedUnion('kind', [compare, chain, record, bridge], { error: 'expected kind: compare, chain, record or bridge' });

export const configSchema = z
  .strictObject({
    control: text('a control socket unix:PATH').optional(),
    /** The live page and /metrics: HOST:PORT (loopback unless you mean it). */
    metrics: z.string({ error: 'expected HOST:PORT' }).regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, { error: 'expected HOST:PORT' }).optional(),
    instances: z.array(instance, { error: 'expected a list of instances' }).min(1, { error: 'expected at least one instance' }),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.instances.forEach((inst, i) => {
      const first = seen.get(inst.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['instances', i, 'name'], message: `"${inst.name}" is already the name of instances[${first}]` });
      else seen.set(inst.name, i);
    });
  });

export type DaemonConfig = z.infer<typeof configSchema>;
export type InstanceConfig = DaemonConfig['instances'][number];
export type FilterObject = z.infer<typeof filterObject>;

/** A path as the file spells it: instances[2].filters[0].interval. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(top level)' : out;
}

function found(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Validates a parsed document; throws ERR_CONFIG listing every problem, one line each. */
export function validateConfig(doc: unknown, file = 'config'): DaemonConfig {
  const r = configSchema.safeParse(doc, { reportInput: true });
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const where = formatPath(i.path);
    if (i.code === 'unrecognized_keys') return `${where}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    // A discriminator's issue carries the whole object: show the value of the key it names.
    const last = i.path[i.path.length - 1];
    const input = 'input' in i && typeof i.input === 'object' && i.input !== null && typeof last === 'string' && last in i.input ? (i.input as Record<string, unknown>)[last] : 'input' in i ? i.input : undefined;
    return `${where}: ${i.message}${'input' in i && i.code !== 'custom' ? `, got ${found(input)}` : ''}`;
  });
  throw new NetrrError('ERR_CONFIG', `${file}: ${lines.length} problem${lines.length > 1 ? 's' : ''}\n  ${lines.join('\n  ')}`);
}

/** Reads and validates a YAML or JSON config file. */
export function loadConfig(file: string): DaemonConfig {
  let textContent: string;
  try {
    textContent = readFileSync(file, 'utf8');
  } catch (e) {
    throw fromSystemError(e, file);
  }
  let doc: unknown;
  try {
    doc = parseYaml(textContent, { prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const at = e.linePos?.[0];
      throw new NetrrError('ERR_CONFIG', `${file}${at !== undefined ? `:${at.line}:${at.col}` : ''}: not valid YAML or JSON: ${e.message.split('\n')[0]}`);
    }
    throw e;
  }
  return validateConfig(doc, file);
}

/** A filter object as the -f string the chain's parser takes (QEMU's ",," for a comma inside a value). */
export function filterString(f: FilterObject): string {
  const parts: string[] = [f.kind];
  for (const [k, v] of Object.entries(f)) {
    if (k === 'kind' || v === undefined) continue;
    const value = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
    parts.push(`${k}=${value.replace(/,/g, ',,')}`);
  }
  return parts.join(',');
}
