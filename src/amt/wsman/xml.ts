/**
 * A small, strict XML reader for WS-Management replies, written for this one job: a single
 * pass over the text with indexOf, producing the tree shape fast-xml-parser gives with
 * `removeNSPrefix` (local names; `@_name` attributes; `#text`; repeated elements as arrays;
 * a text-only element as its string). It refuses DOCTYPE and ENTITY declarations outright (no
 * DTD, so no entity expansion and no external entities), never expands entities (parse.ts
 * decodes the five predefined ones and character references when a value is read), bounds
 * nesting depth, checks that end tags match, and builds objects without a prototype so an
 * element named `__proto__` is just a name. See docs/amt-client.md for why this is not
 * fast-xml-parser 5 (its 5.x releases parse these documents at xml2js speed).
 */

export type XmlTreeValue = string | XmlTreeObject | XmlTreeValue[];
export interface XmlTreeObject {
  [name: string]: XmlTreeValue;
}

export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.offset = offset;
  }
}

export const ATTRIBUTE_PREFIX = '@_';
export const TEXT_KEY = '#text';
const DEFAULT_MAX_DEPTH = 64;

interface Frame {
  /**
   * Where the qualified name is written in the source ([nameAt, nameEnd)): the end tag is matched
   * against the source there, so no string is cut for the qualified name at all.
   */
  readonly nameAt: number;
  readonly nameEnd: number;
  readonly local: string;
  /** Attributes and child elements; created on first use. */
  content: XmlTreeObject | undefined;
  text: string;
}

const GT = 0x3e; // >
const SLASH = 0x2f; // /
const QUESTION = 0x3f; // ?
const BANG = 0x21; // !
const EQUALS = 0x3d; // =
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const LT = 0x3c; // <
const COLON = 0x3a; // :

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function qnameOf(s: string, frame: Frame): string {
  return s.slice(frame.nameAt, frame.nameEnd);
}

/**
 * The index after `frame`'s qualified name when `s` repeats it at `at`, else -1. A charCodeAt
 * loop: String.prototype.startsWith with a position is a builtin call that V8 does not inline,
 * and cost more here than the whole comparison.
 */
function sameNameAt(s: string, at: number, frame: Frame): number {
  const from = frame.nameAt;
  const length = frame.nameEnd - from;
  for (let q = 0; q < length; q++) if (s.charCodeAt(at + q) !== s.charCodeAt(from + q)) return -1;
  return at + length;
}

/** `xmlns` at `at` (a namespace declaration's name, or its first part). */
function isXmlnsAt(s: string, at: number): boolean {
  return (
    s.charCodeAt(at) === 0x78 && // x
    s.charCodeAt(at + 1) === 0x6d && // m
    s.charCodeAt(at + 2) === 0x6c && // l
    s.charCodeAt(at + 3) === 0x6e && // n
    s.charCodeAt(at + 4) === 0x73 // s
  );
}

/**
 * Tree objects inherit from one frozen, empty, prototype-less object: no name a document uses
 * (`__proto__`, `constructor`, `toString`) finds anything but its own property, as with
 * Object.create(null), but V8 keeps them in fast mode with shared shapes, where
 * Object.create(null) makes every object a hash table.
 */
const EMPTY_PROTOTYPE: object = Object.freeze(Object.create(null) as object);
function TreeObject(): void {}
TreeObject.prototype = EMPTY_PROTOTYPE;
const TreeObjectClass = TreeObject as unknown as new () => XmlTreeObject;

function newObject(): XmlTreeObject {
  return new TreeObjectClass();
}

function put(target: XmlTreeObject, key: string, value: XmlTreeValue): void {
  const existing = target[key];
  if (existing === undefined) target[key] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else target[key] = [existing, value];
}

/** Parses one document into `{ rootLocalName: value }`. Throws XmlSyntaxError. */
export function parseXmlTree(source: string, maxDepth = DEFAULT_MAX_DEPTH): XmlTreeObject {
  const s = source;
  const n = s.length;
  const stack: Frame[] = [];
  const root = newObject();
  // Parse state in one object and the helpers at module level: closures made per document
  // (and named per creation by tsx's keepNames) cost more than the small replies they parse.
  const st: ParseState = { stack, root, rootSeen: false };
  let i = 0;

  while (i < n) {
    const lt = s.indexOf('<', i);
    if (lt < 0) {
      addText(stack, s.slice(i), i);
      break;
    }
    if (lt > i) addText(stack, s.slice(i, lt), i);
    const c = s.charCodeAt(lt + 1);

    if (c === SLASH) {
      // `</` qname S? `>` (XML 1.0 §3.1, ETag), compared in place.
      const frame = stack.pop();
      let k = frame === undefined ? -1 : sameNameAt(s, lt + 2, frame);
      if (k >= 0) {
        while (k < n && isSpace(s.charCodeAt(k))) k++;
        if (s.charCodeAt(k) !== GT) k = -1;
      }
      if (frame === undefined || k < 0) {
        const gt = s.indexOf('>', lt + 2);
        if (gt < 0) throw new XmlSyntaxError('unterminated end tag', lt);
        const qname = s.slice(lt + 2, gt);
        const open = frame === undefined ? '(nothing)' : qnameOf(s, frame);
        throw new XmlSyntaxError(`end tag </${qname}> does not close <${open}>`, lt);
      }
      close(st, frame);
      i = k + 1;
      continue;
    }

    if (c === QUESTION) {
      const end = s.indexOf('?>', lt + 2);
      if (end < 0) throw new XmlSyntaxError('unterminated processing instruction', lt);
      i = end + 2;
      continue;
    }

    if (c === BANG) {
      if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt + 4);
        if (end < 0) throw new XmlSyntaxError('unterminated comment', lt);
        i = end + 3;
        continue;
      }
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) throw new XmlSyntaxError('unterminated CDATA section', lt);
        if (stack.length === 0) throw new XmlSyntaxError('CDATA outside the root element', lt);
        // CDATA is literal: escape '&' so the entity decoding done on read leaves it as written.
        addText(stack, s.slice(lt + 9, end).replaceAll('&', '&amp;'), lt);
        i = end + 3;
        continue;
      }
      // <!DOCTYPE, <!ENTITY, <!ELEMENT...: no DTD of any kind.
      throw new XmlSyntaxError('DOCTYPE and other declarations are not accepted', lt);
    }

    // A start tag: name, then attributes, then '>' or '/>'.
    // Only the local name is cut out of the source (names are matched by local name).
    let j = lt + 1;
    let colon = -1;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (isSpace(d) || d === GT || d === SLASH) break;
      if (d === LT || d === EQUALS) throw new XmlSyntaxError('bad element name', lt);
      if (d === COLON && colon < 0) colon = j;
      j++;
    }
    if (j === lt + 1) throw new XmlSyntaxError('bad element name', lt);
    const frame: Frame = {
      nameAt: lt + 1,
      nameEnd: j,
      local: s.slice(colon < 0 ? lt + 1 : colon + 1, j),
      content: undefined,
      text: '',
    };
    let selfClosing = false;
    for (;;) {
      while (j < n && isSpace(s.charCodeAt(j))) j++;
      if (j >= n) throw new XmlSyntaxError(`unterminated start tag <${qnameOf(s, frame)}>`, lt);
      const d = s.charCodeAt(j);
      if (d === GT) {
        j++;
        break;
      }
      if (d === SLASH) {
        if (s.charCodeAt(j + 1) !== GT) throw new XmlSyntaxError(`stray "/" in <${qnameOf(s, frame)}>`, j);
        selfClosing = true;
        j += 2;
        break;
      }
      const nameStart = j;
      let attrColon = -1;
      while (j < n) {
        const e = s.charCodeAt(j);
        if (e === EQUALS || isSpace(e) || e === GT || e === SLASH) break;
        if (e === COLON && attrColon < 0) attrColon = j;
        j++;
      }
      const nameEnd = j;
      while (j < n && isSpace(s.charCodeAt(j))) j++;
      if (nameEnd === nameStart || s.charCodeAt(j) !== EQUALS)
        throw new XmlSyntaxError(`attribute without a value in <${qnameOf(s, frame)}>`, j);
      j++;
      while (j < n && isSpace(s.charCodeAt(j))) j++;
      const quote = s.charCodeAt(j);
      if (quote !== DQUOTE && quote !== SQUOTE)
        throw new XmlSyntaxError(`unquoted attribute value in <${qnameOf(s, frame)}>`, j);
      const valueEnd = s.indexOf(quote === DQUOTE ? '"' : "'", j + 1);
      if (valueEnd < 0) throw new XmlSyntaxError(`unterminated attribute value in <${qnameOf(s, frame)}>`, j);
      // Namespace declarations (`xmlns`, `xmlns:p`) are not data: names are matched by local
      // name. Recognised in place, so the envelope's many declarations cut no strings.
      const declaration = isXmlnsAt(s, nameStart) && (nameEnd === nameStart + 5 || attrColon === nameStart + 5);
      if (!declaration) {
        frame.content ??= newObject();
        frame.content[ATTRIBUTE_PREFIX + s.slice(attrColon < 0 ? nameStart : attrColon + 1, nameEnd)] = s.slice(
          j + 1,
          valueEnd,
        );
      }
      j = valueEnd + 1;
    }
    i = j;
    if (stack.length === 0 && st.rootSeen) throw new XmlSyntaxError('a second root element', lt);
    if (selfClosing) {
      close(st, frame);
    } else {
      if (stack.length >= maxDepth) throw new XmlSyntaxError(`elements nested deeper than ${maxDepth}`, lt);
      stack.push(frame);
    }
  }

  const unclosed = stack[stack.length - 1];
  if (unclosed !== undefined) throw new XmlSyntaxError(`<${qnameOf(s, unclosed)}> is never closed`, n);
  if (!st.rootSeen) throw new XmlSyntaxError('no root element', n);
  return root;
}

interface ParseState {
  readonly stack: Frame[];
  readonly root: XmlTreeObject;
  rootSeen: boolean;
}

function addText(stack: readonly Frame[], raw: string, at: number): void {
  const top = stack[stack.length - 1];
  if (top === undefined) {
    if (raw.trim() !== '') throw new XmlSyntaxError('text outside the root element', at);
    return;
  }
  top.text += raw;
}

function close(st: ParseState, frame: Frame): void {
  const stack = st.stack;
  const text = frame.text.trim();
  let value: XmlTreeValue;
  if (frame.content === undefined) {
    value = text;
  } else {
    if (text !== '') frame.content[TEXT_KEY] = text;
    value = frame.content;
  }
  const parent = stack[stack.length - 1];
  if (parent === undefined) {
    st.rootSeen = true;
    st.root[frame.local] = value;
    return;
  }
  parent.content ??= newObject();
  put(parent.content, frame.local, value);
}
