import type { Scalar } from '../resources.ts';

/** An audit entry's detail as `key=value` chips (the server never puts a secret in it). */
export function AuditDetail({ detail }: { readonly detail: Readonly<Record<string, Scalar>> }) {
  const entries = Object.entries(detail);
  if (entries.length === 0) return null;
  return (
    <span class="chips">
      {entries.map(([k, v]) => (
        <span class="chip" key={k}>
          {k}=<span class="mono">{String(v)}</span>
        </span>
      ))}
    </span>
  );
}
