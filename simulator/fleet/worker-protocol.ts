import type { PooledKeyPem } from './key-pool.ts';
import type { DeviceRecord, MemberEnv } from './member.ts';
import type { DevicePlan } from './plan.ts';

/**
 * Messages between the fleet parent and a worker process over the fork IPC channel (a local
 * pipe). Plans carry PPS values in clear: they go to the devices that hold them and nowhere else.
 */
export type ToWorker =
  | { type: 'start'; plans: DevicePlan[]; env: MemberEnv; keyPool: PooledKeyPem[] }
  | { type: 'reboot'; index: number }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'started'; records: DeviceRecord[] }
  | { type: 'changes'; records: DeviceRecord[] }
  | { type: 'stopped' }
  | { type: 'failed'; code: string; message: string };
