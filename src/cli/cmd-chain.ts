// netrr chain --guest SPEC --upstream SPEC -f KIND,prop=value,… [-f …]

import { Chain } from '../app/chain.ts';
import { NetrrError } from '../errors.ts';
import { type ColoEvent } from '../engine/filters/filter.ts';
import { parseFilterList } from '../engine/filters/filter-spec.ts';
import { forwardEndpointEvents } from '../io/frame-endpoint.ts';
import type { CommandHandler } from '../control/control-server.ts';
import { runService } from './service.ts';

/** Filter commands the control socket offers, with their help. */
const FILTER_COMMANDS: Record<string, string> = {
  'epoch-begin': 'close the open epoch of a buffer (mode epochs) and open the next: {"filter"?} → {"epoch", "closed"}',
  'epoch-commit': 'release every closed epoch up to and including {"epoch": N} in order ({"filter"?})',
  'epoch-abort': 'discard epoch {"epoch": N} and every later one, the open one too ({"filter"?})',
  'buffer-plug': 'sch_plug TCQ_PLUG_BUFFER: start a new epoch (mode plug)',
  'buffer-release-one': 'sch_plug TCQ_PLUG_RELEASE_ONE: release the previous epoch by count (mode plug)',
  'buffer-release-indefinite': 'sch_plug TCQ_PLUG_RELEASE_INDEFINITE: pass everything through (mode plug)',
  'buffer-limit': 'sch_plug TCQ_PLUG_LIMIT: {"bytes": N} (mode plug)',
};

export async function chainCommand(o: { guest: string; upstream: string; filter?: string[]; control?: string }): Promise<void> {
  // Validate the whole filter list before anything opens.
  const filters = parseFilterList(o.filter ?? []);
  const chain = new Chain({ guest: o.guest, network: o.upstream, filters });
  const commands: Record<string, { help: string; handler: CommandHandler }> = {
    'query-filters': { help: 'every filter, head to tail: kind, state, backlog, released, drops by reason, hold-time histogram', handler: () => chain.filters.map((f) => f.report()) },
    'filter-status': {
      help: 'turn a filter on or off: {"filter": ID, "status": "on"|"off"} (a buffer turned off releases what it holds)',
      handler: (a) => {
        if (a.status !== 'on' && a.status !== 'off') throw new NetrrError('ERR_BAD_OPTION', 'filter-status: "status" must be "on" or "off"');
        chain.setStatus(a.filter, a.status === 'on');
        return chain.filter(a.filter).report();
      },
    },
    'colo-event': {
      help: 'deliver a COLO event to every filter: {"event": "checkpoint"|"failover"} (failover turns filters off, as QEMU)',
      handler: (a) => {
        if (a.event !== 'checkpoint' && a.event !== 'failover') throw new NetrrError('ERR_BAD_OPTION', 'colo-event: "event" must be "checkpoint" or "failover"');
        chain.colo(a.event as ColoEvent);
        return {};
      },
    },
  };
  for (const [name, help] of Object.entries(FILTER_COMMANDS)) commands[name] = { help, handler: (a) => chain.command(name, a) };
  await runService(chain, {
    name: 'chain',
    ...(o.control !== undefined ? { control: o.control } : {}),
    bindEvents: (emit) => {
      chain.onEvent = emit;
      forwardEndpointEvents([chain.guest, chain.network], emit);
    },
    commands,
  });
}
