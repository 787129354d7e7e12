import { PassThrough, type Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { Type, type FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox';
import { isScsError, ScsError } from '../../errors.ts';
import { GENERATE_MAX } from '../../psk/service.ts';
import { exportPsks, type ExportOptions } from '../../psk/transfer/export.ts';
import { importPsks, type ImportSummary } from '../../psk/transfer/import.ts';
import { formatPid } from '../../psk/pid.ts';
import { Secret } from '../../secret.ts';
import { EXPORT_FORMATS, type ExportFormat } from '../../store/transfers/transfers.ts';
import { principalOf, type RouteOptions } from '../context.ts';
import { problemResponse, StringEnum } from '../schemas.ts';

/** Default largest import upload: a million-pair bundle is about 65 MB. */
export const IMPORT_MAX_BYTES = 256 * 1024 * 1024;
/** An export waits this long at most for a client to take the next piece (it holds the write lock). */
export const EXPORT_STALL_MS = 30_000;
/** Header that carries a bundle's passphrase on an import (a body is the file itself). */
export const PASSPHRASE_HEADER = 'x-scs-bundle-passphrase';

const BatchName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' });
const Password = Type.String({ minLength: 1, maxLength: 32, writeOnly: true });

const CONTENT_TYPE: Readonly<Record<ExportFormat, string>> = {
  csv: 'text/csv; charset=utf-8',
  'setup-bin': 'application/octet-stream',
  bundle: 'application/octet-stream',
};
const EXTENSION: Readonly<Record<ExportFormat, string>> = { csv: 'csv', 'setup-bin': 'bin', bundle: 'scsbundle' };

function downloadName(format: ExportFormat, batch: string | undefined): string {
  if (format === 'setup-bin') return 'setup.bin';
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '').replace('T', '-');
  return `psks-${batch ?? 'all'}-${stamp}.${EXTENSION[format]}`;
}

/** PSK files: export as a download (PPS inside: needs psk.export), import by upload. */
export const transferRoutes: FastifyPluginCallbackTypebox<RouteOptions> = (app, { ctx }, done) => {
  const { store } = ctx;

  // The import body is the file: read as bytes on this route only (everything else is JSON).
  app.addContentTypeParser(
    ['application/octet-stream', 'text/csv'],
    { parseAs: 'buffer', bodyLimit: ctx.limits.importMaxBytes },
    (_request, body, parsed) => parsed(null, body),
  );

  app.post(
    '/psks/export',
    {
      config: { permission: 'psk.export' },
      schema: {
        tags: ['psks'],
        summary: 'Export PSKs as a file download: CSV, setup.bin or encrypted bundle (audited)',
        description:
          'The response is the file (Content-Disposition: attachment). csv and setup-bin mark the PSKs exported; a ' +
          'bundle is a copy unless bundle.move (then they become transferred here). One transaction: it commits ' +
          'only after the last byte was handed to the connection; a client that goes away rolls it back. ' +
          'Errors before the first byte are problem+json.',
        body: Type.Object(
          {
            format: StringEnum(EXPORT_FORMATS),
            batch: Type.Optional(BatchName),
            count: Type.Optional(Type.Integer({ minimum: 1, maximum: GENERATE_MAX, description: 'oldest first' })),
            state: Type.Optional(
              StringEnum(['available', 'exported'], { description: 'default available (bundle: both)' }),
            ),
            setupBin: Type.Optional(
              Type.Object(
                {
                  version: Type.Optional(Type.Integer({ minimum: 1, maximum: 4 })),
                  currentMebxPassword: { ...Password, description: 'the MEBx password the machines have now' },
                  newMebxPassword: Type.Optional({ ...Password, description: 'the MEBx password to set' }),
                  hostNamePattern: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
                  domainName: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
                  doNotConsume: Type.Optional(Type.Boolean()),
                  scramble: Type.Optional(Type.Boolean()),
                  provisioningServerAddress: Type.Optional(Type.String({ minLength: 7, maxLength: 15 })),
                  provisioningServerPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
                },
                { additionalProperties: false },
              ),
            ),
            bundle: Type.Optional(
              Type.Object(
                {
                  passphrase: Type.String({ minLength: 1, maxLength: 1024, writeOnly: true }),
                  move: Type.Optional(Type.Boolean()),
                  sourceName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
                },
                { additionalProperties: false },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        produces: ['application/octet-stream', 'text/csv'],
        response: {
          200: {
            description: 'the file',
            content: {
              // Typed as a stream: the handler sends one; the document says bytes.
              'application/octet-stream': { schema: Type.Unsafe<Readable>({ type: 'string', format: 'binary' }) },
              'text/csv': { schema: Type.Unsafe<Readable>({ type: 'string' }) },
            },
          },
          409: problemResponse('SCS_EXPORT_EMPTY: no PSK matches'),
        },
      },
    },
    async (request, reply) => {
      const { actor } = principalOf(request);
      const b = request.body;
      const fileName = downloadName(b.format, b.batch);
      const s = b.setupBin;
      const options: ExportOptions = {
        format: b.format,
        actor,
        fileName: `api:${fileName}`,
        ...(b.batch === undefined ? {} : { batch: b.batch }),
        ...(b.count === undefined ? {} : { count: b.count }),
        ...(b.state === undefined ? {} : { state: b.state }),
        ...(s === undefined
          ? {}
          : {
              setupBin: {
                currentMebxPassword: new Secret(s.currentMebxPassword),
                ...(s.newMebxPassword === undefined ? {} : { newMebxPassword: new Secret(s.newMebxPassword) }),
                ...(s.version === undefined ? {} : { version: s.version as 1 | 2 | 3 | 4 }),
                ...(s.hostNamePattern === undefined ? {} : { hostNamePattern: s.hostNamePattern }),
                ...(s.domainName === undefined ? {} : { domainName: s.domainName }),
                ...(s.doNotConsume === undefined ? {} : { doNotConsume: s.doNotConsume }),
                ...(s.scramble === undefined ? {} : { scramble: s.scramble }),
                ...(s.provisioningServerAddress === undefined
                  ? {}
                  : { provisioningServerAddress: s.provisioningServerAddress }),
                ...(s.provisioningServerPort === undefined ? {} : { provisioningServerPort: s.provisioningServerPort }),
              },
            }),
        ...(b.bundle === undefined
          ? {}
          : {
              bundle: {
                passphrase: new Secret(b.bundle.passphrase),
                ...(b.bundle.move === undefined ? {} : { move: b.bundle.move }),
                ...(b.bundle.sourceName === undefined ? {} : { sourceName: b.bundle.sourceName }),
              },
            }),
      };
      // A roomy buffer: the export writes ~50 KB per 1000 rows and should not wait on every piece.
      const out = new PassThrough({ highWaterMark: 1024 * 1024 });
      let started: () => void = () => undefined;
      const firstByte = new Promise<void>((resolve) => (started = resolve));
      const write = async (chunk: Buffer): Promise<void> => {
        started();
        if (out.destroyed) throw new ScsError('SCS_FILE_IO', 'the client went away before the export was complete');
        if (out.write(chunk)) {
          // The store answers synchronously (SQLite): without a turn of the event loop per piece, no
          // byte would reach the socket, and no hang-up be noticed, until the export had finished.
          await setImmediate();
          return;
        }
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            cleanup();
            reject(new ScsError('SCS_FILE_IO', `the client took no data for ${EXPORT_STALL_MS / 1000} s`));
          }, EXPORT_STALL_MS);
          const onDrain = (): void => {
            cleanup();
            resolve();
          };
          const onClose = (): void => {
            cleanup();
            reject(new ScsError('SCS_FILE_IO', 'the client went away before the export was complete'));
          };
          const cleanup = (): void => {
            clearTimeout(timer);
            out.off('drain', onDrain);
            out.off('close', onClose);
          };
          out.on('drain', onDrain);
          out.on('close', onClose);
        });
      };
      // A client that hangs up stops the export at its next group of rows (and rolls it back),
      // whatever the socket buffers still hold.
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort(new ScsError('SCS_FILE_IO', 'the client went away'));
      });
      const running = exportPsks(store, { ...options, signal: abort.signal }, write);
      // Errors before the first byte (nothing matches, weak passphrase, ...) are ordinary problems.
      const first = await Promise.race([firstByte.then(() => 'streaming' as const), running]);
      if (first !== 'streaming') return sendWhole();
      running.then(
        (summary) => {
          request.log.info({ exportId: summary.exportId, count: summary.count, format: summary.format }, 'export sent');
          ctx.counts.poke();
          out.end();
        },
        (err: unknown) => {
          // Headers are gone already: all that is left is to cut the download short.
          request.log.warn({ err: isScsError(err) ? err.message : err }, 'export failed while streaming; rolled back');
          out.destroy(isScsError(err) ? err : new Error('export failed'));
        },
      );
      return reply
        .header('content-type', CONTENT_TYPE[b.format])
        .header('content-disposition', `attachment; filename="${fileName}"`)
        .header('cache-control', 'no-store')
        .send(out);

      // An export that finished before its first chunk reached us (tiny files) is sent whole.
      function sendWhole() {
        ctx.counts.poke();
        out.end();
        return reply
          .header('content-type', CONTENT_TYPE[b.format])
          .header('content-disposition', `attachment; filename="${fileName}"`)
          .header('cache-control', 'no-store')
          .send(out);
      }
    },
  );

  app.post(
    '/psks/import',
    {
      config: { permission: 'psk.write' },
      schema: {
        tags: ['psks'],
        summary: 'Import a CSV, setup.bin or bundle file (the request body): all or nothing (audited)',
        description:
          'Send the file as application/octet-stream (or text/csv). The format is detected from its first bytes. A ' +
          `bundle needs its passphrase in the ${PASSPHRASE_HEADER} header. Any error (wrong passphrase, damage, a ` +
          'bad check character, a PID here with another PPS) changes nothing.',
        querystring: Type.Object(
          {
            batch: Type.Optional(BatchName),
            state: Type.Optional(
              StringEnum(['available', 'exported'], {
                description: 'state of pairs from a CSV or foreign setup.bin (default exported)',
              }),
            ),
            fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'for the audit log' })),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({ [PASSPHRASE_HEADER]: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) }),
        consumes: ['application/octet-stream', 'text/csv'],
        // No type: the validator lets the bytes through; contentEncoding makes it `format: binary` in OpenAPI.
        body: Type.Unsafe<Buffer>({ contentEncoding: 'binary', description: 'the file' }),
        response: {
          200: Type.Object(
            {
              format: StringEnum(['csv', 'bundle', 'setup-bin']),
              outcome: Type.String({ description: 'imported | nothing-new | already-imported | reconciled' }),
              records: Type.Integer(),
              inserted: Type.Integer(),
              duplicates: Type.Integer(),
              bundleId: Type.Optional(Type.String()),
              sourceName: Type.Optional(Type.String()),
              consumed: Type.Optional(
                Type.Array(
                  Type.Object({
                    number: Type.Integer(),
                    pid: Type.Union([Type.String(), Type.Null()]),
                    state: Type.Union([Type.String(), Type.Null()]),
                  }),
                ),
              ),
              unconsumed: Type.Optional(Type.Integer()),
              exportId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
            },
            { description: 'what the import did' },
          ),
          413: problemResponse('SCS_REQUEST_TOO_LARGE'),
          415: problemResponse('SCS_MEDIA_TYPE_INVALID'),
          422: problemResponse('SCS_BUNDLE_AUTH_FAILED: wrong passphrase or tampered bundle'),
        },
      },
    },
    async (request) => {
      const { actor } = principalOf(request);
      // Read whole before the transaction: a slow upload must not hold the database's write lock.
      const body: unknown = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new ScsError('SCS_ARGUMENT_INVALID', 'the request body must be the file to import');
      }
      const q = request.query;
      const header = request.headers[PASSPHRASE_HEADER];
      const passphrase = typeof header === 'string' ? new Secret(header) : undefined;
      const summary: ImportSummary = await importPsks(store, body, {
        actor,
        fileName: `api:${q.fileName ?? 'upload'}`,
        ...(q.batch === undefined ? {} : { batch: q.batch }),
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(passphrase === undefined ? {} : { passphrase }),
      });
      ctx.counts.poke();
      return importBody(summary);
    },
  );
  done();
};

function importBody(s: ImportSummary) {
  const common = {
    format: s.format,
    outcome: s.outcome,
    records: s.records,
    inserted: s.inserted,
    duplicates: s.duplicates,
  };
  switch (s.format) {
    case 'csv':
      return common;
    case 'bundle':
      return { ...common, bundleId: s.bundleId, sourceName: s.sourceName };
    case 'setup-bin':
      return {
        ...common,
        exportId: s.exportId,
        unconsumed: s.unconsumed,
        consumed: s.consumed.map((c) => ({
          number: c.number,
          pid: c.pid === null ? null : formatPid(c.pid),
          state: c.state,
        })),
      };
  }
}
