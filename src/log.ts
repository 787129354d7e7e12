import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout belongs to command output). Secrets are `Secret`
 * values and print as [redacted]; the redact list is a second net for fields that must never
 * appear even if someone logs a raw object.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: null,
      redact: { paths: ['pps', 'password', '*.pps', '*.password', 'masterKey', 'passphrase'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 2, sync: true }),
  );
}
