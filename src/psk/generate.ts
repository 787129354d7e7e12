import { randomFillSync } from 'node:crypto';
import { ALPHABET, checkChar } from './checksum.ts';
import type { Pid } from './pid.ts';
import type { Pps } from './pps.ts';

/**
 * Uniform symbols from a CSPRNG: bytes >= 252 (= 7 * 36) are rejected so that `byte % 36`
 * has no bias (protocol.md §2). Bytes are drawn in blocks so generating a million pairs
 * costs a few hundred randomFill calls, not thirty million.
 */
export class SymbolSource {
  readonly #pool = Buffer.allocUnsafe(16384);
  #pos = this.#pool.length;

  next(): string {
    for (;;) {
      if (this.#pos >= this.#pool.length) {
        randomFillSync(this.#pool);
        this.#pos = 0;
      }
      const byte = this.#pool[this.#pos++] as number;
      if (byte < 252) return ALPHABET[byte % 36] as string;
    }
  }

  symbols(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += this.next();
    return out;
  }
}

const shared = new SymbolSource();

export function generatePid(source: SymbolSource = shared): Pid {
  const body = source.symbols(7);
  return (body + checkChar(body)) as Pid;
}

export function generatePps(source: SymbolSource = shared): Pps {
  let out = '';
  for (let g = 0; g < 8; g++) {
    const body = source.symbols(3);
    out += body + checkChar(body);
  }
  return out as Pps;
}
