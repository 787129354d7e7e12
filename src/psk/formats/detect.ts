/**
 * Which PSK file format a file is, from its first bytes: the bundle magic, a setup.bin file-type
 * GUID, else text that can be CSV. Anything else is `SCS_FORMAT_UNKNOWN`.
 */
import { ScsError } from '../../errors.ts';
import { BUNDLE_MAGIC } from './bundle.ts';
import { isSetupBinGuid } from './setupbin.ts';

export type PskFileFormat = 'bundle' | 'setupbin' | 'csv';

/** Read this many bytes (or the whole file, if shorter) and pass them to detectFormat. */
export const DETECT_SAMPLE_BYTES = 4096;

function unknown(what: string): ScsError {
  return new ScsError('SCS_FORMAT_UNKNOWN', `not a CSV, setup.bin or transfer bundle: ${what}`);
}

export function detectFormat(sample: Buffer): PskFileFormat {
  if (sample.length === 0) throw unknown('the file is empty');
  const head = Math.min(sample.length, BUNDLE_MAGIC.length);
  // A file cut inside the magic is still a bundle: its decoder then reports it as truncated.
  if (sample.subarray(0, head).equals(BUNDLE_MAGIC.subarray(0, head))) return 'bundle';
  if (isSetupBinGuid(sample)) return 'setupbin';
  const bom = sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf ? 3 : 0;
  for (let i = bom; i < sample.length; i++) {
    const b = sample[i] as number;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) {
      throw unknown(`binary content (byte 0x${b.toString(16).padStart(2, '0')} at offset ${i})`);
    }
  }
  try {
    // stream: a multi-byte character cut by the end of the sample is not an error.
    new TextDecoder('utf-8', { fatal: true }).decode(sample.subarray(bom), { stream: true });
  } catch {
    throw unknown('the content is neither UTF-8 text nor a known binary format');
  }
  return 'csv';
}
