import type { Writable } from 'node:stream';
import { ScsError } from '../../errors.ts';

/** Where a streamed export goes: a Writable (HTTP response, file stream) or an async callback. */
export type ExportSink = Writable | ((chunk: Buffer) => Promise<void>);

function sinkClosed(cause?: unknown): ScsError {
  return new ScsError('SCS_FILE_IO', 'the export destination closed before the export was complete', {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Turns a sink into `write(chunk)` that honours back-pressure and fails if the Writable goes away. */
export function writeTo(sink: ExportSink): (chunk: Buffer) => Promise<void> {
  if (typeof sink === 'function') return sink;
  return async (chunk) => {
    if (sink.destroyed || sink.writableEnded) throw sinkClosed();
    if (sink.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown): void => {
        sink.off('drain', onDrain);
        sink.off('close', onClose);
        sink.off('error', onError);
        if (err === undefined) resolve();
        else reject(err instanceof ScsError ? err : sinkClosed(err));
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(sinkClosed());
      const onError = (e: unknown): void => done(e);
      sink.on('drain', onDrain);
      sink.on('close', onClose);
      sink.on('error', onError);
    });
  };
}
