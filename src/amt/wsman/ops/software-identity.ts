import { enumerate } from '../enumerate.ts';
import type { Operation } from '../operation.ts';
import { optionalBool, text, child, type XmlValue } from '../parse.ts';

/** CIM_SoftwareIdentity (protocol.md §6 step 1): the instance `AMT` carries the AMT version. */
export const SOFTWARE_IDENTITY = 'CIM_SoftwareIdentity';

export interface SoftwareIdentity {
  readonly instanceId: string;
  readonly versionString: string;
  readonly isEntity: boolean | undefined;
}

export interface SoftwareInventory {
  readonly items: readonly SoftwareIdentity[];
  /** VersionString of InstanceID `AMT`, e.g. `6.2.0`. */
  readonly amtVersion: string | undefined;
}

function item(node: XmlValue): SoftwareIdentity {
  return {
    instanceId: text(child(node, 'InstanceID')) ?? '',
    versionString: text(child(node, 'VersionString')) ?? '',
    isEntity: optionalBool(node, 'IsEntity'),
  };
}

/** Enumerate + Pull CIM_SoftwareIdentity until EndOfSequence. */
export function enumerateSoftwareIdentity(): Operation<SoftwareInventory> {
  const inner = enumerate(SOFTWARE_IDENTITY, item);
  return {
    name: inner.name,
    async run(exchange) {
      const items = await inner.run(exchange);
      return { items, amtVersion: items.find((i) => i.instanceId === 'AMT')?.versionString };
    },
  };
}
