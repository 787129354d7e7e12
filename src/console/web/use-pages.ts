import { useCallback, useState } from 'preact/hooks';

/** The cursors of keyset paging: index 0 is the first page (no cursor). */
export function usePages<C>(): {
  readonly page: number;
  readonly cursor: C | undefined;
  readonly next: (cursor: C) => void;
  readonly prev: () => void;
  readonly reset: () => void;
} {
  const [cursors, setCursors] = useState<readonly (C | undefined)[]>([undefined]);
  const next = useCallback((c: C) => setCursors((cs) => [...cs, c]), []);
  const prev = useCallback(() => setCursors((cs) => (cs.length > 1 ? cs.slice(0, -1) : cs)), []);
  const reset = useCallback(() => setCursors([undefined]), []);
  return { page: cursors.length - 1, cursor: cursors[cursors.length - 1], next, prev, reset };
}
