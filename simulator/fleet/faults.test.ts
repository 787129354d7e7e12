import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { parseFaultSpec, planFaults } from './faults.ts';
import { SeededRandom } from './prng.ts';

const FULL =
  'latency=200;drop@3:5%;status=SetTLSPSK:1:2%;reboot-before-commit:1%;reboot-after-commit:1%;wrong-psk:1%;stall-handshake=20000:1%';

describe('fault spec parser', () => {
  it('parses every fault kind with its value and share', () => {
    const spec = parseFaultSpec(FULL);
    assert.deepEqual(
      spec.clauses.map(({ text: _t, ...rest }) => rest),
      [
        { kind: 'latency', ms: 200, percent: 100 },
        { kind: 'drop', atCall: 3, percent: 5 },
        { kind: 'status', method: 'SetTLSPSK', status: 1, percent: 2 },
        { kind: 'reboot-before-commit', percent: 1 },
        { kind: 'reboot-after-commit', percent: 1 },
        { kind: 'wrong-psk', percent: 1 },
        { kind: 'stall-handshake', ms: 20000, percent: 1 },
      ],
    );
    assert.equal(spec.clauses[1]?.text, 'drop@3:5%');
  });

  it('reads drop=K like drop@K, a times suffix on status, decimal shares, spaces and empty clauses', () => {
    const spec = parseFaultSpec(' drop=2 ; status=CommitChanges:2076x3:0.5% ;; ');
    assert.deepEqual(
      spec.clauses.map(({ text: _t, ...rest }) => rest),
      [
        { kind: 'drop', atCall: 2, percent: 100 },
        { kind: 'status', method: 'CommitChanges', status: 2076, times: 3, percent: 0.5 },
      ],
    );
    assert.deepEqual(parseFaultSpec('').clauses, []);
  });

  const invalid: [string, RegExp][] = [
    ['explode:5%', /clause 1 "explode:5%": unknown fault "explode"; known faults: latency, drop/],
    ['latency', /latency needs milliseconds/],
    ['latency=-5', /latency needs milliseconds/],
    ['latency=fast', /latency needs milliseconds/],
    ['drop@0', /drop needs the number of the WS-Management call/],
    ['drop', /drop needs the number/],
    ['wrong-psk:0%', /share "0%" must be a percentage above 0 and at most 100/],
    ['wrong-psk:150%', /share "150%"/],
    ['wrong-psk=1', /wrong-psk takes no value/],
    ['reboot-after-commit:3', /unexpected ":3"/],
    ['status=SetTLSPSK', /exactly one CODE/],
    ['status=SetTLSPSK:one', /status code "one"/],
    ['status=1abc:1', /status needs a method name/],
    ['status=SetTLSPSK:1x0', /times "0" must be 1 or more/],
    ['stall-handshake=0', /stall-handshake needs milliseconds/],
    ['latency=5;Latency=7', /clause 2 "Latency=7"/],
  ];
  for (const [text, why] of invalid) {
    it(`refuses "${text}" with SCS_SIM_CONFIG_INVALID saying what is wrong`, () => {
      assert.throws(
        () => parseFaultSpec(text),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID') && why.test(e.message),
      );
    });
  }
});

describe('fault plan', () => {
  it('gives exactly round(share × N) devices each fault', () => {
    const plans = planFaults(parseFaultSpec(FULL), { seed: 's', devices: 1000 });
    const count = (p: (x: (typeof plans)[number]) => boolean): number => plans.filter(p).length;
    assert.equal(
      count((p) => p.faults.latencyMs === 200),
      1000,
    );
    assert.equal(
      count((p) => p.faults.dropAtCall === 3),
      50,
    );
    assert.equal(
      count((p) => p.faults.methodStatus?.method === 'SetTLSPSK' && p.faults.methodStatus.status === 1),
      20,
    );
    assert.equal(
      count((p) => p.faults.rebootBeforeCommit === true),
      10,
    );
    assert.equal(
      count((p) => p.faults.rebootAfterCommit === true),
      10,
    );
    assert.equal(
      count((p) => p.wrongPsk),
      10,
    );
    assert.equal(
      count((p) => p.faults.stallHandshakeMs === 20000),
      10,
    );
  });

  it('picks the same devices for the same seed and different ones for another seed', () => {
    const spec = parseFaultSpec('wrong-psk:10%;drop@2:10%');
    const picked = (seed: string): number[] =>
      planFaults(spec, { seed, devices: 200 }).flatMap((p, i) => (p.wrongPsk ? [i] : []));
    assert.deepEqual(picked('alpha'), picked('alpha'));
    assert.equal(picked('alpha').length, 20);
    assert.notDeepEqual(picked('alpha'), picked('beta'));
    assert.deepEqual(
      planFaults(spec, { seed: 'alpha', devices: 200 }),
      planFaults(spec, { seed: 'alpha', devices: 200 }),
    );
  });

  it('lets --latency set every device and a later clause override it where it applies', () => {
    const plans = planFaults(parseFaultSpec('latency=900:50%'), { seed: 'x', devices: 10, latencyMs: 20 });
    assert.deepEqual(plans.map((p) => p.faults.latencyMs).sort(), [20, 20, 20, 20, 20, 900, 900, 900, 900, 900]);
    assert.ok(plans.filter((p) => p.faults.latencyMs === 900).every((p) => p.applied[0] === 'latency=900:50%'));
  });
});

describe('SeededRandom', () => {
  it('repeats its stream for the same seed and labels and differs for other labels', () => {
    const a = new SeededRandom('seed', 'uuid', 1);
    const b = new SeededRandom('seed', 'uuid', 1);
    const c = new SeededRandom('seed', 'uuid', 2);
    const take = (r: SeededRandom): number[] => Array.from({ length: 8 }, () => r.nextU32());
    const first = take(a);
    assert.deepEqual(first, take(b));
    assert.notDeepEqual(first, take(c));
  });

  it('samples distinct indices inside the range', () => {
    const r = new SeededRandom('s');
    const s = r.sample(100, 100);
    assert.equal(new Set(s).size, 100);
    assert.ok(s.every((i) => i >= 0 && i < 100));
    assert.deepEqual(r.sample(5, 9).length, 5);
  });

  it('draws every value below n over many draws', () => {
    const r = new SeededRandom('below');
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(r.below(36));
    assert.equal(seen.size, 36);
  });
});
