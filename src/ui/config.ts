import { z } from 'zod';

/** The `ui:` section: the web UI and its JSON API, served by `sluice serve` on the registry's own address. */
export const uiConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('serve the web UI at / and its API under /api/v1/ (default true)'),
    admins: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'who may use the administration pages (mirror jobs, audit log, explaining anyone, lifecycle), written as ' +
          'the `who` of an access rule: alice, robot:ops, group:admins (default: nobody)',
      ),
  })
  .strict();

/** The `ui:` section as loaded. */
export type UiConfig = z.infer<typeof uiConfigSchema>;
