import { STEPS } from '../resources.ts';

/**
 * A job's progress through the provisioning steps: done steps filled, the current one marked.
 * Steps the profile skips are never reached and stay hollow; `verify` done means provisioned.
 */
export function StepTrack({ step, state }: { readonly step: string | null; readonly state: string }) {
  const at = step === null ? -1 : STEPS.indexOf(step as (typeof STEPS)[number]);
  return (
    <ol class="steps" aria-label={`step ${step ?? 'none yet'}, ${state}`}>
      {STEPS.map((s, i) => {
        const cls =
          state === 'succeeded' || i < at ? 'done' : i === at ? (state === 'failed' ? 'failed' : 'current') : '';
        return (
          <li key={s} class={cls} title={s}>
            <span class="sr-only">{s}</span>
          </li>
        );
      })}
    </ol>
  );
}
