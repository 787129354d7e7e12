import type { ComponentChildren } from 'preact';

/** A labelled form field with its hint and the server's complaint about it, tied by aria. */
export function Field({
  id,
  label,
  hint,
  error,
  children,
}: {
  readonly id: string;
  readonly label: string;
  readonly hint?: string;
  readonly error: string | undefined;
  readonly children: ComponentChildren;
}) {
  return (
    <div class={`field${error === undefined ? '' : ' invalid'}`}>
      <label for={id}>{label}</label>
      {children}
      {hint === undefined ? null : (
        <p class="muted small" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error === undefined ? null : (
        <p class="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** aria-describedby for a Field's input. */
export function describedBy(id: string, hint: boolean, error: string | undefined): string | undefined {
  const ids = [hint ? `${id}-hint` : '', error === undefined ? '' : `${id}-error`].filter((x) => x !== '');
  return ids.length === 0 ? undefined : ids.join(' ');
}
