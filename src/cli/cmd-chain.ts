// netrr chain --guest SPEC --upstream SPEC -f KIND,prop=value,… [-f …]

import { Chain } from '../app/chain.ts';
import { parseFilterList } from '../engine/filters/filter-spec.ts';
import { runService } from './service.ts';

export async function chainCommand(o: { guest: string; upstream: string; filter?: string[]; control?: string; failoverLink?: string }): Promise<void> {
  // Validate the whole filter list before anything opens.
  const filters = parseFilterList(o.filter ?? []);
  const chain = new Chain({ guest: o.guest, network: o.upstream, filters, ...(o.failoverLink !== undefined ? { failoverLink: o.failoverLink } : {}) });
  await runService(chain, o.control !== undefined ? { control: o.control } : {});
}
