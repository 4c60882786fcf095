// netrr chain --guest SPEC --upstream SPEC -f KIND,prop=value,… [-f …]

import { Chain } from '../app/chain.ts';
import { parseFilterList } from '../engine/filters/filter-spec.ts';
import { runService } from './service.ts';

export interface ChainCliOptions {
  guest: string;
  upstream: string;
  filter?: string[];
  control?: string;
  failoverLink?: string;
}

/** The chain the options describe; the whole filter list is validated before anything opens. */
export function chainApp(o: ChainCliOptions): Chain {
  const filters = parseFilterList(o.filter ?? []);
  return new Chain({ guest: o.guest, network: o.upstream, filters, ...(o.failoverLink !== undefined ? { failoverLink: o.failoverLink } : {}) });
}

export async function chainCommand(o: ChainCliOptions): Promise<void> {
  await runService(chainApp(o), o.control !== undefined ? { control: o.control } : {});
}
