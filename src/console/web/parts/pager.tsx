export interface PagerProps {
  readonly page: number;
  readonly hasNext: boolean;
  readonly onPrev: () => void;
  readonly onNext: () => void;
  readonly label: string;
}

/** Keyset paging: the API gives a `next` cursor, the console keeps the cursors it came through. */
export function Pager({ page, hasNext, onPrev, onNext, label }: PagerProps) {
  return (
    <nav class="pager" aria-label={`${label} pages`}>
      <button type="button" class="secondary" onClick={onPrev} disabled={page === 0}>
        ← Previous
      </button>
      <span class="muted">page {page + 1}</span>
      <button type="button" class="secondary" onClick={onNext} disabled={!hasNext}>
        Next →
      </button>
    </nav>
  );
}
