import { label } from '../format.ts';

/** A state name with its colour (styles.css `.state-<name>`), readable without the colour too. */
export function StateBadge({ state }: { readonly state: string }) {
  return <span class={`badge state-${state}`}>{label(state)}</span>;
}
