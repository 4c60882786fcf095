// The netrr command line. Every command maps a NetrrError to one clear line
// on stderr and an exit status by category (errors.ts); no stack traces for
// user mistakes.

import { Command, CommanderError, Option } from 'commander';
import { NetrrError, exitCodeFor, isNetrrError } from '../errors.ts';
import { bridgeCommand } from './cmd-bridge.ts';
import { compareCommand } from './cmd-compare.ts';
import { replayCommand } from './cmd-replay.ts';
import { qemuRrCommand } from './cmd-qemu-rr.ts';
import { qemuLogEventsCommand, qemuLogExportCommand, qemuLogInfoCommand } from './cmd-qemu-log.ts';
import { krrLogEntriesCommand, krrLogExportCommand, krrLogInfoCommand } from './cmd-krr-log.ts';
import { KRR_LAYOUT_NAMES } from '../codec/krr-layout.ts';
import { logCatCommand, logExportCommand, logInfoCommand, logVerifyCommand, recordCommand } from './cmd-log.ts';
import { controlCommand } from './cmd-control.ts';
import { chainCommand } from './cmd-chain.ts';
import { demoCommand } from './cmd-demo.ts';
import { runCommand } from './cmd-run.ts';
import { decodeCommand } from './cmd-decode.ts';
import { pcapCatCommand, pcapConvertCommand, pcapInfoCommand } from './cmd-pcap.ts';
import { VERSION } from './version.ts';

const EXIT_USAGE = 64;

function intOption(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new NetrrError('ERR_BAD_OPTION', `${name} must be a whole number, not "${v}"`);
    return Number(v);
  };
}

export function buildProgram(): Command {
  const program = new Command('netrr')
    .description('The network half of VM record/replay and COLO/Remus fault tolerance, interoperable with QEMU')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('decode')
    .description('decode every packet of a pcap/pcapng file (no FILE: a bundled sample capture)')
    .argument('[file]', 'capture file')
    .option('--json', 'one JSON object per packet')
    .option('--summary', 'counts per protocol instead of one line per packet')
    .option('--vnet-hdr <bytes>', 'each frame starts with a virtio-net header of this many bytes (10, 12, 20)', intOption('--vnet-hdr'))
    .action(async (file: string | undefined, o: { json?: boolean; summary?: boolean; vnetHdr?: number }) => {
      await decodeCommand(file, o);
    });

  const pcap = program.command('pcap').description('inspect and convert capture files');
  pcap
    .command('info')
    .description('format, sections, interfaces, packet and byte counts, time span')
    .argument('<file>')
    .option('--json', 'one JSON object')
    .action(async (file: string, o: { json?: boolean }) => pcapInfoCommand(file, o));
  pcap
    .command('cat')
    .description('one line per record: interface, time, lengths, direction, comments, custom options')
    .argument('<file>')
    .option('--json', 'one JSON object per record')
    .option('--hex', 'include the captured bytes in hex')
    .action(async (file: string, o: { json?: boolean; hex?: boolean }) => pcapCatCommand(file, o));
  pcap
    .command('convert')
    .description('convert pcap <-> pcapng (format from --to, else from the output extension)')
    .argument('<input>')
    .argument('<output>')
    .addOption(new Option('--to <format>', 'output format').choices(['pcap', 'pcapng']))
    .action(async (input: string, output: string, o: { to?: string }) => {
      const { packets } = await pcapConvertCommand(input, output, o);
      process.stderr.write(`netrr: wrote ${packets} packets to ${output}\n`);
    });

  program
    .command('demo')
    .description('what netrr is for, in about ten seconds: two replicas of a guest through netrr compare and a buffer, one divergence and its checkpoint, epochs committed, a live page; ends with a summary')
    .option('--duration-ms <ms>', 'how long the replicas send (default 10000)', intOption('--duration-ms'))
    .option('--file-bytes <n>', 'size of the download the guests serve (default 4 MiB)', intOption('--file-bytes'))
    .option('--host <addr>', 'the live page listens here (default 127.0.0.1)')
    .option('--port <n>', 'the live page port (default: any free one)', intOption('--port'))
    .option('--linger-ms <ms>', 'keep the live page up this long after the summary (default 0)', intOption('--linger-ms'))
    .option('--json', 'print the summary as JSON')
    .option('--guests', 'the same with two real tiny QEMU guests (TCG) as the replicas and netrr as their whole COLO proxy')
    .action(async (o: Parameters<typeof demoCommand>[0]) => demoCommand(o));

  program
    .command('bridge')
    .description('forward frames between two endpoints (QEMU socket framing), optionally capturing both directions')
    .requiredOption('--a <spec>', 'first endpoint: unix:PATH[,server=on] | tcp:HOST:PORT[,server=on] | udp:HOST:PORT,remote=HOST:PORT | tap:IFNAME[,netns=NAME] (each with [,vnet-hdr=on])')
    .requiredOption('--b <spec>', 'second endpoint, same forms')
    .option('--capture <file>', 'write both directions to a pcapng file')
    .option('--control <spec>', 'control socket unix:PATH (JSON lines, QMP-like)')
    .action(async (o: { a: string; b: string; capture?: string; control?: string }) => bridgeCommand(o));

  program
    .command('compare')
    .description("COLO compare proxy in place of QEMU's colo-compare: releases primary output the secondary matches, requests a checkpoint on divergence")
    .requiredOption('--primary-in <spec>', "primary guest's output (QEMU filter-mirror outdev peer): unix:PATH[,server=on] | tcp:HOST:PORT[,server=on]")
    .requiredOption('--secondary-in <spec>', "secondary guest's output (filter-redirector outdev peer)")
    .requiredOption('--outdev <spec>', 'where released primary frames go (filter-redirector indev peer)')
    .option('--notify-dev <spec>', 'Xen COLO notify channel (DO_CHECKPOINT out; COLO_CHECKPOINT in)')
    .option('--qmp <spec>', "primary QEMU's QMP socket: request checkpoints via x-checkpoint-delay, flush on STOP→RESUME")
    .option('--vnet-hdr-support', 'records carry the vnet_hdr_len field (as QEMU vnet_hdr_support=on)')
    .option('--compare-timeout <ms>', 'unmatched packet age that forces a checkpoint (default 3000)', intOption('--compare-timeout'))
    .option('--expired-scan-cycle <ms>', 'old-packet scan period (default 1000)', intOption('--expired-scan-cycle'))
    .option('--max-queue-size <n>', 'per-connection queue bound (default 1024)', intOption('--max-queue-size'))
    .option('--max-connections <n>', 'connection table bound, LRU (default 16384)', intOption('--max-connections'))
    .option('--max-queued-bytes <n>', 'bound on all queued bytes (default 256 MiB)', intOption('--max-queued-bytes'))
    .addOption(new Option('--mode <mode>', 'qemu: QEMU 7.2 parity (bugs fixed, see README); extended: IPv6, VLAN, ARP compared').choices(['qemu', 'extended']).default('extended'))
    .option('--normalize <list>', 'extended: header fields to ignore: ip-id,ttl,ip-tos,tcp-timestamps,tcp-sack,tcp-window | none | default (all but ip-tos)')
    .option('--bypass <rule>', 'extended: release matching traffic uncompared, e.g. proto=udp,dst=10.0.0.0/8,dport=123 (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--report <file>', 'append one JSON line per checkpoint request')
    .option('--report-pcap <file>', 'pcapng of the frames behind each checkpoint request')
    .option('--control <spec>', 'control socket unix:PATH')
    .action(async (o: Parameters<typeof compareCommand>[0]) => compareCommand(o));

  program
    .command('record')
    .description('sit between a guest and its network and log both directions to a crash-safe netrr log')
    .requiredOption('--guest <spec>', "where the guest's QEMU connects (-netdev stream/socket/dgram peer), e.g. unix:PATH,server=on")
    .requiredOption('--upstream <spec>', 'what the guest would otherwise use: passt (unix:PATH of passt --socket), a QEMU netdev, tap:IFNAME[,netns=NAME][,vnet-hdr=on]')
    .requiredOption('--log <file>', 'log file (segments FILE, FILE.1, …)')
    .option('--sync <policy>', 'none | always (group commit) | interval:MS (default interval:100)')
    .option('--segment-bytes <n>', 'rotate to a new segment beyond this size (default 1 GiB)', intOption('--segment-bytes'))
    .option('--order <order>', 'log-first (default: forward a frame once its log write is done) | forward-first (forward at once; a kill can lose delivered frames)')
    .option('--control <spec>', 'control socket unix:PATH')
    .action(async (o: Parameters<typeof recordCommand>[0]) => recordCommand(o));

  program
    .command('chain')
    .description("an ordered filter chain between a guest and its network, with QEMU's filter semantics: buffer (Remus-style output commit: epochs, sch_plug, interval), dump, mirror, redirector")
    .requiredOption('--guest <spec>', "where the guest's QEMU connects (-netdev stream/socket/dgram peer), e.g. unix:PATH,server=on")
    .requiredOption('--upstream <spec>', 'what the guest would otherwise use: passt, a QEMU netdev, tap:IFNAME[,netns=NAME]')
    .option('-f, --filter <spec>', 'KIND,prop=value,… (repeatable, head to tail unless position= says otherwise): buffer[,mode=epochs|plug|interval][,limit-frames=N][,limit-bytes=N][,overflow=drop-tail|checkpoint|backpressure][,limit=BYTES][,interval=US][,on-shutdown=drop|release] | dump,file=F[,maxlen=N] | mirror,outdev=SPEC | redirector[,indev=SPEC][,outdev=SPEC] (both: [,vnet_hdr_support=on]); common: id=, queue=all|rx|tx, status=on|off, position=head|tail|id=ID, insert=before|behind', (v: string, prev: string[] = []) => [...prev, v])
    .option('--failover-link <iface>', 'IFACE[,after-ms=N]: the COLO link; when its carrier stays off N ms (default 300) every filter gets failover, as x-colo-lost-heartbeat')
    .option('--control <spec>', 'control socket unix:PATH')
    .action(async (o: Parameters<typeof chainCommand>[0]) => chainCommand(o));

  program
    .command('replay')
    .description('play a recorded outside world back to a guest (no upstream), stopping at the first divergence of its output; exit 0 when it matched')
    .requiredOption('--log <file>', 'a netrr log made by netrr record')
    .requiredOption('--guest <spec>', "where the guest's QEMU connects, e.g. unix:PATH,server=on")
    .addOption(new Option('--pacing <p>', 'causal: inject once the guest caught up; recorded: original timing; fast: no waiting').choices(['causal', 'recorded', 'fast']).default('causal'))
    .option('--speed <x>', 'with --pacing recorded: time scale (2 = twice as fast)')
    .option('--timeout <ms>', 'how long an expected guest frame may be missing (default 10000)', intOption('--timeout'))
    .option('--window <n>', 'expected guest frames a live frame may match ahead (default 8)', intOption('--window'))
    .option('--lookahead-bytes <n>', 'log frame bytes held ahead of the replay (default 64 MiB; the log streams, memory stays bounded)', intOption('--lookahead-bytes'))
    .option('--continue', 'report divergences and go on instead of stopping at the first')
    .option('--report <file>', 'append one JSON line per divergence')
    .option('--report-pcap <file>', 'pcapng with the expected and the actual frame of each divergence')
    .option('--control <spec>', 'control socket unix:PATH (query-status shows progress, quit stops)')
    .action(async (o: Parameters<typeof replayCommand>[0]) => {
      const code = await replayCommand(o);
      if (code !== 0) process.exitCode = code;
    });

  const log = program.command('log').description('inspect, verify, repair and export netrr logs');
  log
    .command('info')
    .argument('<file>')
    .option('--json')
    .description('segments, frame counts per port and direction, time span, clean close or damage')
    .action(async (file: string, o: { json?: boolean }) => logInfoCommand(file, o));
  log
    .command('verify')
    .argument('<file>')
    .option('--repair', 'truncate a damaged segment to its last good record and close it with a footer')
    .option('--json')
    .description('check every record (length, CRC); report the last good record of a torn log')
    .action(async (file: string, o: { repair?: boolean; json?: boolean }) => {
      const damage = await logVerifyCommand(file, o);
      if (damage !== null) throw new NetrrError(damage.code, `${file}: damaged (see above); run with --repair to keep every record before the damage`);
    });
  log
    .command('cat')
    .argument('<file>')
    .option('--json')
    .option('--hex')
    .description('one line per frame record')
    .action(async (file: string, o: { json?: boolean; hex?: boolean }) => logCatCommand(file, o));
  log
    .command('export')
    .argument('<file>')
    .argument('<output>', 'pcapng file')
    .description('pcapng with one interface per port and direction, sequence numbers in a custom option')
    .action(async (file: string, output: string) => {
      const { frames } = await logExportCommand(file, output);
      process.stderr.write(`netrr: exported ${frames} frames to ${output}\n`);
    });

  const qlog = program.command('qemu-log').description("QEMU's own record/replay logs (-icount …,rr=record,rrfile=…): versions 0xe0200c and 0xe0200d");
  qlog
    .command('info')
    .argument('<file>')
    .option('--json')
    .option('--assume-version <v>', 'read a log whose header was never written (killed recording) as this version')
    .description('version, event counts per kind, instruction total, network events per filter-replay')
    .action(async (file: string, o: { json?: boolean; assumeVersion?: string }) => qemuLogInfoCommand(file, o));
  qlog
    .command('events')
    .argument('<file>')
    .option('--json')
    .option('--instructions', 'also list INSTRUCTION events (there are millions)')
    .option('--assume-version <v>')
    .description('one line per event: offset, instruction position, kind, details')
    .action(async (file: string, o: { json?: boolean; instructions?: boolean; assumeVersion?: string }) => qemuLogEventsCommand(file, o));
  qlog
    .command('export')
    .argument('<file>')
    .argument('<output>', 'pcapng file')
    .option('--assume-version <v>')
    .description('network events (filter-replay) to pcapng, the instruction position in a custom option')
    .action(async (file: string, output: string, o: { assumeVersion?: string }) => {
      const { frames } = await qemuLogExportCommand(file, output, o);
      process.stderr.write(`netrr: exported ${frames} frames to ${output}\n`);
    });

  const klog = program.command('krr-log').description("KRR's network log (kernel_rr_network.log): the e1000 receive DMA of a kernel record/replay recording, all nine on-disk layouts");
  const layoutHelp = `the struct layout (${KRR_LAYOUT_NAMES.join(', ')}); detected when omitted`;
  klog
    .command('info')
    .argument('<file>')
    .option('--json')
    .option('--layout <name>', layoutHelp)
    .description('layout (and why the others were ruled out), entries, SG pieces, frames, instruction counts, vCPUs, RX ring, checksums, clean end')
    .action(async (file: string, o: { json?: boolean; layout?: string }) => krrLogInfoCommand(file, o));
  klog
    .command('entries')
    .argument('<file>')
    .option('--json')
    .option('--layout <name>', layoutHelp)
    .description('one line per entry: instruction count, cpu, follow_num, data SGs, the descriptor write-back decoded')
    .action(async (file: string, o: { json?: boolean; layout?: string }) => krrLogEntriesCommand(file, o));
  klog
    .command('export')
    .argument('<file>')
    .argument('<output>', 'pcapng file')
    .option('--layout <name>', layoutHelp)
    .description('the received frames to pcapng, instruction count, cpu and entry in custom options')
    .action(async (file: string, output: string, o: { layout?: string }) => {
      const { frames } = await krrLogExportCommand(file, output, o);
      process.stderr.write(`netrr: exported ${frames} frames to ${output}\n`);
    });

  const qrr = program.command('qemu-rr').description("wrap QEMU's own record/replay: adds -icount rr=…, one filter-replay per netdev, tx=timer; refuses a replay whose netdevs or filters differ");
  for (const mode of ['record', 'replay'] as const) {
    qrr
      .command(mode)
      .requiredOption('--log <dir>', 'directory holding replay.bin and the saved command line')
      .option('--qemu <binary>', 'QEMU binary (default qemu-system-x86_64)')
      .option('--timeout <sec>', 'kill QEMU after this long (replays can stall)', intOption('--timeout'))
      .argument('<qemu-args...>', 'QEMU arguments, after --')
      .description(mode === 'record' ? 'run QEMU recording; saves the command line beside the log' : 'run QEMU replaying; refuses a command line whose netdevs or filters differ from the recording')
      .action(async (args: string[], o: { log: string; qemu?: string; timeout?: number }) => {
        const code = await qemuRrCommand(mode, o, args);
        if (code !== 0) process.exitCode = code;
      });
  }

  for (const [name, alias] of [['ctl', false], ['control', true]] as const) {
    program
      .command(name)
      .description(alias ? 'the same as netrr ctl' : "send a command to a running netrr (or QEMU's QMP) control socket and print the reply; --watch then prints its events")
      .argument('<socket>', 'unix:PATH')
      .argument('[command]', 'e.g. query-status, query-instances, checkpoint-done, quit, query-commands')
      .argument('[arguments...]', 'key=value pairs (values parsed as JSON where they are) or one JSON object')
      .option('--watch', 'after the reply (or without a command), print every event as a JSON line until the socket closes or SIGINT')
      .action(async (socket: string, command: string | undefined, words: string[], o: { watch?: boolean }) => controlCommand(socket, command, words, o));
  }

  program
    .command('run')
    .description('run several instances (compare, chain, record, bridge) from a YAML or JSON config, with one control socket and one live page with /metrics')
    .argument('<config>', 'the configuration file')
    .option('--check', 'validate the configuration (and every endpoint spec and filter list in it), start nothing')
    .action(async (file: string, o: { check?: boolean }) => {
      const code = await runCommand(file, o);
      if (code !== 0) process.exitCode = code;
    });

  return program;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; usage mistakes were already printed.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (isNetrrError(e)) {
      process.stderr.write(`netrr: ${e.message} [${e.code}]\n`);
      return exitCodeFor(e);
    }
    throw e;
  }
}
