import { ScsError } from '../../src/errors.ts';
import type { DeviceFaults } from '../device/faults.ts';
import { SeededRandom } from './prng.ts';

export type { DeviceFaults };

/**
 * The `--faults` language (docs/simulator-fleet.md):
 *
 *   spec    = clause *( ";" clause )                 empty clauses are ignored
 *   clause  = fault [ ":" share ]                    share = NUMBER "%" (0 < share <= 100), default 100%
 *   fault   = "latency=" MS                          delay before every HTTP reply
 *           | "drop@" K | "drop=" K                  destroy the socket on the K-th WS-Man call (1-based)
 *           | "status=" METHOD ":" CODE [ "x" TIMES ]  METHOD answers ReturnValue CODE (the first TIMES calls)
 *           | "reboot-before-commit"                  CommitChanges reboots the device, pending settings lost
 *           | "reboot-after-commit"                   CommitChanges commits, then the session drops
 *           | "wrong-psk"                             the device holds a PPS other than the CSV's
 *           | "stall-handshake=" MS                   TCP accepted on the TLS port, handshake held MS
 *
 * e.g. `latency=200;drop@3:5%;status=SetTLSPSK:1x2:2%;reboot-before-commit:1%;wrong-psk:1%`.
 * Each clause picks exactly round(share × N) devices with a seeded sample of its own, so the same
 * seed, N and spec give the same devices the same faults; when two clauses set the same field on a
 * device the later clause wins.
 */

export type FaultKind =
  'latency' | 'drop' | 'status' | 'reboot-before-commit' | 'reboot-after-commit' | 'wrong-psk' | 'stall-handshake';

interface ClauseBase {
  /** The clause as written (trimmed); shown in the state file. */
  text: string;
  /** Share of the fleet, 0 < percent <= 100. */
  percent: number;
}

export type FaultClause = ClauseBase &
  (
    | { kind: 'latency'; ms: number }
    | { kind: 'drop'; atCall: number }
    | { kind: 'status'; method: string; status: number; times?: number }
    | { kind: 'reboot-before-commit' }
    | { kind: 'reboot-after-commit' }
    | { kind: 'wrong-psk' }
    | { kind: 'stall-handshake'; ms: number }
  );

export interface FaultSpec {
  readonly clauses: readonly FaultClause[];
}

export const FAULT_KINDS: readonly FaultKind[] = [
  'latency',
  'drop',
  'status',
  'reboot-before-commit',
  'reboot-after-commit',
  'wrong-psk',
  'stall-handshake',
];

const MAX_LATENCY_MS = 600_000;
const MAX_STALL_MS = 3_600_000;

function int(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

/** Parses a `--faults` spec; errors are SCS_SIM_CONFIG_INVALID naming the clause and the rule. */
export function parseFaultSpec(spec: string): FaultSpec {
  const clauses: FaultClause[] = [];
  const raw = spec.split(';');
  for (const [i, part] of raw.entries()) {
    const text = part.trim();
    if (text === '') continue;
    const fail = (why: string): never => {
      throw new ScsError('SCS_SIM_CONFIG_INVALID', `--faults clause ${i + 1} "${text}": ${why}`);
    };
    const pieces = text.split(':').map((p) => p.trim());
    let percent = 100;
    const last = pieces.at(-1) ?? '';
    if (pieces.length > 1 && last.endsWith('%')) {
      pieces.pop();
      const p = /^\d+(\.\d+)?$/.test(last.slice(0, -1)) ? Number(last.slice(0, -1)) : NaN;
      if (!(p > 0 && p <= 100)) fail(`share "${last}" must be a percentage above 0 and at most 100`);
      percent = p;
    }
    const head = pieces[0] ?? '';
    const args = pieces.slice(1);
    const m = /^([a-z-]+)(?:([=@])(.*))?$/.exec(head);
    if (m === null) return fail(`expected NAME, NAME=VALUE or drop@K; known faults: ${FAULT_KINDS.join(', ')}`);
    const name = m[1] ?? '';
    const sep = m[2];
    const value = (m[3] ?? '').trim();
    const noArgs = (): void => {
      if (args.length > 0) fail(`unexpected ":${args.join(':')}" (only a share like ":5%" may follow)`);
    };
    const noValue = (): void => {
      if (sep !== undefined) fail(`${name} takes no value`);
      noArgs();
    };
    switch (name) {
      case 'latency': {
        noArgs();
        const ms = sep === '=' ? int(value, 0, MAX_LATENCY_MS) : undefined;
        if (ms === undefined) fail(`latency needs milliseconds 0..${MAX_LATENCY_MS} (latency=MS)`);
        clauses.push({ kind: 'latency', ms: ms as number, percent, text });
        break;
      }
      case 'drop': {
        noArgs();
        const atCall = sep !== undefined ? int(value, 1, 1_000_000) : undefined;
        if (atCall === undefined) fail('drop needs the number of the WS-Management call to drop, 1 or more (drop@K)');
        clauses.push({ kind: 'drop', atCall: atCall as number, percent, text });
        break;
      }
      case 'status': {
        if (sep !== '=' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(value)) {
          fail('status needs a method name (status=METHOD:CODE or status=METHOD:CODExTIMES)');
        }
        if (args.length !== 1) fail('status needs exactly one CODE or CODExTIMES after the method');
        const sm = /^(\d+)(?:x(\d+))?$/.exec(args[0] ?? '');
        const status = sm === null ? undefined : int(sm[1] ?? '', 0, 0xffff_ffff);
        if (sm === null || status === undefined) fail(`status code "${args[0] ?? ''}" must be 0..4294967295`);
        const timesText = sm?.[2];
        const times = timesText === undefined ? undefined : int(timesText, 1, 1_000_000);
        if (timesText !== undefined && times === undefined) fail(`times "${timesText}" must be 1 or more`);
        clauses.push({
          kind: 'status',
          method: value,
          status: status as number,
          ...(times === undefined ? {} : { times }),
          percent,
          text,
        });
        break;
      }
      case 'reboot-before-commit':
      case 'reboot-after-commit':
      case 'wrong-psk':
        noValue();
        clauses.push({ kind: name, percent, text });
        break;
      case 'stall-handshake': {
        noArgs();
        const ms = sep === '=' ? int(value, 1, MAX_STALL_MS) : undefined;
        if (ms === undefined) fail(`stall-handshake needs milliseconds 1..${MAX_STALL_MS} (stall-handshake=MS)`);
        clauses.push({ kind: 'stall-handshake', ms: ms as number, percent, text });
        break;
      }
      default:
        fail(`unknown fault "${name}"; known faults: ${FAULT_KINDS.join(', ')}`);
    }
  }
  return { clauses };
}

/** What the fleet does to one device. */
export interface DeviceFaultPlan {
  faults: DeviceFaults;
  /** The device holds a PPS other than the one in the PSK file. */
  wrongPsk: boolean;
  /** The clauses that picked this device, as written. */
  applied: string[];
}

export interface PlanFaultsOptions {
  seed: string;
  devices: number;
  /** `--latency`: a base delay for every device (a latency clause overrides it where it applies). */
  latencyMs?: number;
}

/** Deterministic by (seed, devices, spec): the same devices get the same faults every run. */
export function planFaults(spec: FaultSpec, opts: PlanFaultsOptions): DeviceFaultPlan[] {
  const plans: DeviceFaultPlan[] = Array.from({ length: opts.devices }, () => ({
    faults: opts.latencyMs ? { latencyMs: opts.latencyMs } : {},
    wrongPsk: false,
    applied: [],
  }));
  for (const [c, clause] of spec.clauses.entries()) {
    const count = Math.round((clause.percent / 100) * opts.devices);
    const picked = new SeededRandom(opts.seed, 'fault', c, clause.text).sample(opts.devices, count);
    for (const index of picked) {
      const plan = plans[index];
      if (plan === undefined) continue;
      plan.applied.push(clause.text);
      const f = plan.faults;
      switch (clause.kind) {
        case 'latency':
          f.latencyMs = clause.ms;
          break;
        case 'drop':
          f.dropAtCall = clause.atCall;
          break;
        case 'status':
          f.methodStatus = {
            method: clause.method,
            status: clause.status,
            ...(clause.times === undefined ? {} : { times: clause.times }),
          };
          break;
        case 'reboot-before-commit':
          f.rebootBeforeCommit = true;
          break;
        case 'reboot-after-commit':
          f.rebootAfterCommit = true;
          break;
        case 'wrong-psk':
          plan.wrongPsk = true;
          break;
        case 'stall-handshake':
          f.stallHandshakeMs = clause.ms;
          break;
      }
    }
  }
  return plans;
}
