import type { FastifyInstance } from 'fastify';
import { Notifier } from '../events/notifier.js';
import type { RegistryContext } from './context.js';

/**
 * Starts the events journal and its deliveries when `notifications:` is configured: the journal opens
 * before the server answers its first request, and deliveries stop (cursors written) when it closes.
 */
export function installEvents(app: FastifyInstance, ctx: RegistryContext): void {
  const config = ctx.config.notifications;
  if (!config) return;
  if (ctx.readOnly) {
    app.log.warn('notifications: not journaled, this registry is read-only (storage.maintenance.readonly.enabled)');
    return;
  }
  const notifier = new Notifier(config, ctx.driver, ctx.metrics.registry, app.log);
  ctx.events = notifier;
  app.addHook('onReady', async () => notifier.start());
  app.addHook('onClose', async () => notifier.close());
}
