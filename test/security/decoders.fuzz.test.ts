import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SeededRandom } from '../../simulator/fleet/prng.ts';
import { HttpResponseParser } from '../../src/amt/http/response.ts';
import { ScsError } from '../../src/errors.ts';
import { generatePps } from '../../src/psk/generate.ts';
import { parsePid } from '../../src/psk/pid.ts';
import { formatPps } from '../../src/psk/pps.ts';
import { nextInput, split } from './fuzz/mutate.ts';
import { check, FuzzViolation, helloReasonsAgree, TARGETS, type FuzzTarget } from './fuzz/targets.ts';

/**
 * Property tests over every decoder that reads bytes from outside (docs/security.md, "Fuzzing
 * the decoders"): a few hundred inputs each here; `npm run fuzz` runs a million per decoder.
 * Each input must be decoded or refused with a catalogue ScsError whose message holds none of
 * the samples' secrets, and the target's own invariants must hold (streaming decoders give the
 * same answer however the bytes are cut; what the client signs, the device's parser reads back).
 */

const MUTATED_RUNS = 300;
const RAW_RUNS = 150;

async function assertHolds(target: FuzzTarget, input: Buffer, seed: number): Promise<void> {
  const outcome = await check(target, input, new SeededRandom(String(seed), 'run'));
  assert.notEqual(
    outcome.kind,
    'failure',
    `${target.name}: ${outcome.kind === 'failure' ? outcome.why : ''}\ninput (hex): ${input.toString('hex').slice(0, 2000)}`,
  );
}

describe('decoders under fuzz', () => {
  const targets = new Map<string, FuzzTarget>();
  before(async () => {
    for (const [name, make] of Object.entries(TARGETS)) targets.set(name, await make());
  });

  for (const name of Object.keys(TARGETS)) {
    it(`${name}: mutated samples, random bytes and token strings are decoded or refused with a catalogue error`, async () => {
      const target = targets.get(name) as FuzzTarget;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (seed) => {
          const { input } = nextInput(new SeededRandom(String(seed), name), target);
          await assertHolds(target, input, seed);
        }),
        { numRuns: MUTATED_RUNS },
      );
    });

    it(`${name}: arbitrary bytes (fast-check's own, shrunk on failure) never crash it`, async () => {
      const target = targets.get(name) as FuzzTarget;
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.integer({ min: 0, max: 1000 }), async (bytes, seed) => {
          await assertHolds(target, Buffer.from(bytes), seed);
        }),
        { numRuns: RAW_RUNS },
      );
    });
  }

  it('every valid sample is accepted (the samples really exercise the success path)', async () => {
    for (const target of targets.values()) {
      for (const [i, sample] of target.samples.entries()) {
        const outcome = await check(target, sample, new SeededRandom('sample', i));
        // The simulator's fault reply and a challenge with a bad qop are refusals by design.
        if (outcome.kind === 'refused' && (target.name === 'wsman-reply' || target.name === 'digest-challenge'))
          continue;
        assert.equal(outcome.kind, 'accepted', `${target.name} sample ${i}: ${JSON.stringify(outcome)}`);
      }
    }
  });

  it('hello: the incremental and one-shot decoders give the same refusal reason however TCP cuts the bytes', () => {
    const target = targets.get('hello') as FuzzTarget;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const rng = new SeededRandom(String(seed), 'reason');
        const { input } = nextInput(rng, target);
        assert.ok(helloReasonsAgree(input, split(rng, input)), input.toString('hex'));
      }),
      { numRuns: MUTATED_RUNS },
    );
  });

  it('a target that throws a plain Error or breaks an invariant is reported as a failure (the check can fail)', async () => {
    const base = targets.get('hello') as FuzzTarget;
    const rng = new SeededRandom('self-test');
    const crash = await check({ ...base, run: () => JSON.parse('{') as void }, Buffer.alloc(1), rng);
    assert.equal(crash.kind, 'failure');
    const broken = await check(
      {
        ...base,
        run: () => {
          throw new FuzzViolation('two paths disagree');
        },
      },
      Buffer.alloc(1),
      rng,
    );
    assert.equal(broken.kind, 'failure');
    const leak = await check(
      {
        ...base,
        secrets: ['SECRETVALUE'],
        run: () => {
          throw new ScsError('SCS_PPS_INVALID', 'PPS SECRETVALUE is invalid');
        },
      },
      Buffer.alloc(1),
      rng,
    );
    assert.equal(leak.kind, 'failure');
  });

  // Found by `npm run fuzz` (seed 2026-11-28, http-response inputs 307230 and 491958): a trailer
  // line over the 1024-byte bound was accepted when it arrived whole and refused when cut.
  it('http: a line over 1024 bytes is refused the same way whether it arrives whole or byte by byte', () => {
    const response = Buffer.from(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: ${'y'.repeat(2000)}\r\n\r\n`,
      'latin1',
    );
    for (const pieces of [[response], [...response].map((b) => Buffer.from([b]))]) {
      const parser = new HttpResponseParser();
      assert.throws(
        () => {
          for (const piece of pieces) parser.push(piece);
        },
        (e: unknown) => e instanceof ScsError && e.code === 'SCS_AMT_HTTP' && /line too long/.test(e.message),
      );
    }
  });

  it('a PPS typed where a PID belongs is refused without being quoted', () => {
    const pps = formatPps(generatePps());
    for (const input of [pps, pps.slice(0, 20), pps.replaceAll('-', '')]) {
      assert.throws(
        () => parsePid(input),
        (e: unknown) =>
          e instanceof ScsError && e.code === 'SCS_PID_INVALID' && !e.message.includes(input.slice(0, 12)),
      );
    }
    assert.throws(() => parsePid('ABCD-EFGX'), /PID "ABCD-EFGX" is invalid/);
  });
});
