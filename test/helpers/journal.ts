import { randomUUID } from 'node:crypto';
import type { NewEvent } from '../../src/events/types.js';

/** An event of `type` for team/app, as a producer hands it to the journal. */
export function newEvent(type: NewEvent['type']): NewEvent {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    type,
    target: { repository: 'team/app' },
    actor: {},
    source: { addr: 'h', instanceID: 'i' },
  };
}
