import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { header, HttpResponseParser, type HttpResponse } from './response.ts';

const CHUNKED = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n' +
    'Set-Thing: a\r\nSet-Thing: b\r\n\r\n' +
    '5\r\nhello\r\n' +
    '7;ext=1\r\n, world\r\n' +
    '0\r\nX-Trailer: t\r\n\r\n',
);

function feed(
  bytes: Buffer,
  cuts: number[] = [],
  opts = {},
): { response: HttpResponse | undefined; parser: HttpResponseParser } {
  const parser = new HttpResponseParser(opts);
  let from = 0;
  let response: HttpResponse | undefined;
  for (const cut of [...cuts, bytes.length]) {
    response = parser.push(bytes.subarray(from, cut)) ?? response;
    from = cut;
  }
  return { response, parser };
}

function httpError(fn: () => unknown, code = 'SCS_AMT_HTTP'): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isScsError(e), String(e));
    assert.equal(e.code, code);
    return e.message;
  }
  assert.fail('expected an error');
}

describe('HTTP response parser', () => {
  it('reads a chunked reply with extensions and trailers, split at every byte', () => {
    for (let cut = 0; cut <= CHUNKED.length; cut++) {
      const { response } = feed(CHUNKED, [cut]);
      assert.ok(response, `cut ${cut}`);
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), 'hello, world');
      assert.equal(response.keepAlive, true);
      assert.deepEqual(response.headers['set-thing'], ['a', 'b']);
      assert.equal(header(response, 'content-type'), 'application/soap+xml;charset=UTF-8');
    }
  });

  it('reads a Content-Length reply one byte at a time and counts bytes, not characters', () => {
    const body = Buffer.from('<x>héllo €</x>');
    const bytes = Buffer.concat([
      Buffer.from(`HTTP/1.1 400 Bad Request\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
    ]);
    const { response } = feed(
      bytes,
      Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
    );
    assert.equal(response?.status, 400);
    assert.equal(response?.reason, 'Bad Request');
    assert.deepEqual(response?.body, body);
  });

  it('is not complete until the last byte of the body', () => {
    const bytes = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
    const p = new HttpResponseParser();
    assert.equal(p.push(bytes.subarray(0, bytes.length - 1)), undefined);
    assert.equal(p.push(bytes.subarray(bytes.length - 1))?.body.toString(), 'abc');
  });

  it('skips interim 100 Continue responses', () => {
    const { response } = feed(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal(response?.status, 204);
    assert.equal(response?.body.length, 0);
  });

  it('honours Connection: close, and HTTP/1.0 defaults', () => {
    assert.equal(
      feed(Buffer.from('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')).response
        ?.keepAlive,
      false,
    );
    assert.equal(feed(Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')).response?.keepAlive, false);
    assert.equal(
      feed(Buffer.from('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n')).response?.keepAlive,
      true,
    );
  });

  it('reads a body without length until the connection closes', () => {
    const { response, parser } = feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\npart one, '));
    assert.equal(response, undefined);
    parser.push(Buffer.from('part two'));
    const done = parser.end();
    assert.equal(done.body.toString(), 'part one, part two');
    assert.equal(done.keepAlive, false);
  });

  it('reports a reply cut short as SCS_AMT_CONNECTION_LOST', () => {
    const { parser } = feed(CHUNKED.subarray(0, CHUNKED.length - 6));
    httpError(() => parser.end(), 'SCS_AMT_CONNECTION_LOST');
  });

  it('counts bytes that follow the response', () => {
    const { parser } = feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naEXTRA'));
    assert.equal(parser.extraBytes, 5);
  });

  it('refuses broken messages with a reason', () => {
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/2 200 OK\r\n\r\n'))),
      /bad status line/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nNoColon\r\n\r\n'))),
      /bad header line/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n'))),
      /bad Content-Length/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'))),
      /bad Content-Length/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'))),
      /unsupported Transfer-Encoding/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'))),
      /bad chunk size/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n'))),
      /not followed by CRLF/,
    );
  });

  it('bounds the header block and the body', () => {
    assert.match(
      httpError(() => feed(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(2000)}`), [], { maxHeaderBytes: 1000 })),
      /header block over 1000/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n'), [], { maxBodyBytes: 1000 })),
      /2000 bytes is over 1000/,
    );
    const chunks = Buffer.from(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'200\r\n' + 'a'.repeat(512) + '\r\n'}`.repeat(1),
    );
    const many = Buffer.concat([
      chunks,
      ...Array.from({ length: 3 }, () => Buffer.from(`200\r\n${'a'.repeat(512)}\r\n`)),
    ]);
    assert.match(
      httpError(() => feed(many, [], { maxBodyBytes: 1000 })),
      /body over 1000/,
    );
    assert.match(
      httpError(() => feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\n' + 'a'.repeat(2000)), [], { maxBodyBytes: 1000 })),
      /body over 1000/,
    );
  });
});
