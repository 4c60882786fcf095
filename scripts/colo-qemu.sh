#!/usr/bin/env bash
# Real COLO: two QEMUs with the x-colo migration capability, and netrr as the
# whole network proxy in place of QEMU's colo-compare, filter-mirror,
# filter-redirector and filter-rewriter (no QEMU proxy object at all). The
# topology is test/colo-topology.test.ts's: the primary and the secondary
# "hosts" in their own network namespaces joined by a COLO link, the client
# on a third. The guest is the diskless test guest (initramfs only, so no
# block replication is needed), serving guest/src/colo-serve.c.
#
#   1. netrr compare (primary host) asks QEMU for checkpoints through the
#      primary's QMP (--qmp: the x-checkpoint-delay kick) and flushes on
#      STOP -> RESUME; the secondary QEMU's RESUME after each checkpoint load
#      is relayed to the secondary's netrr chain as colo-event checkpoint
#      (its rewriter resets its offsets), which QEMU does internally.
#   2. A client downloads DOWNLOAD_BYTES from the pair; the bytes are checked.
#   3. Failover mid-download: x-colo-lost-heartbeat on the secondary, the
#      primary host killed and the COLO link taken down (the secondary's chain
#      fails over on the link's carrier), the service moved to the secondary's
#      LAN port; the client's connection must complete.
#
# Usage (root): bash scripts/colo-qemu.sh [--accel kvm|tcg] [--delay MS] [--bytes N]
# Needs: npm run build, qemu-system-x86_64, gdb (optional: thread stacks when
# QEMU stops answering). Exit 0 when every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."

accel=tcg
delay=2000
bytes=$((4 * 1024 * 1024))
while [ $# -gt 0 ]; do
  case "$1" in
    --accel) accel=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    *) echo "usage: $0 [--accel kvm|tcg] [--delay MS] [--bytes N]" >&2; exit 64 ;;
  esac
done

[ -f dist/bin/netrr.js ] || [ -f bin/netrr.js ] || { echo "run npm run build first" >&2; exit 1; }
bash scripts/build-guest.sh >/dev/null
NETRR="node $PWD/bin/netrr.js"
G=$PWD/.cache/guest
D=$(mktemp -d /tmp/netrr-colo-qemu.XXXXXX)
P=nrrcolo-p-$$ S=nrrcolo-s-$$ C=nrrcolo-c-$$
CLIENT_MAC=02:00:00:00:00:02
pids=()

step() { printf '\n== %s\n' "$*"; }
fail() {
  printf '\nFAILED: %s\n' "$*"
  for q in primary secondary; do
    pid=$(cat "$D/$q.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && command -v gdb >/dev/null; then
      echo "-- $q QEMU (pid $pid) threads:"
      gdb -p "$pid" -batch -ex 'thread apply all bt 8' 2>/dev/null | grep -E '^Thread|^#[0-9]+ +0x[0-9a-f]+ in [a-z_]' || true
    fi
    echo "-- $q QEMU stderr:"; cat "$D/$q.log" 2>/dev/null || true
  done
  echo "(logs and sockets in $D)"
  exit 1
}
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for ns in $P $S $C; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
qmp() { # qmp SOCKET COMMAND [JSON]: one QMP command through netrr control, 10 s at most
  timeout 10 $NETRR control "unix:$1" "$2" ${3:+"$3"} || return 1
}
bg() { "$@" & pids+=($!); disown $!; }

step "network: client LAN (C), primary host (P), secondary host (S), COLO link P<->S"
for ns in $P $S $C; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n $C link add br0 type bridge
ip -n $C link set br0 address $CLIENT_MAC
ip -n $C addr add 10.0.2.2/24 dev br0
ip -n $C link set br0 up
for x in p s; do
  host=$P; [ $x = s ] && host=$S
  ip -n $C link add c${x}0 type veth peer name c${x}1 netns "$host"
  ip -n $C link set c${x}0 master br0 up
  ip -n "$host" link add br$x type bridge
  ip -n "$host" link set br$x up
  ip -n "$host" tuntap add dev tap$x mode tap
  ip -n "$host" link set tap$x master br$x up
  ip -n "$host" link set c${x}1 master br$x
done
ip -n $P link set cp1 up # the secondary's LAN port stays down until failover
ip -n $P link add colo0 type veth peer name colo1 netns $S
ip -n $P addr add 10.10.0.1/30 dev colo0
ip -n $S addr add 10.10.0.2/30 dev colo1
ip -n $P link set colo0 up
ip -n $S link set colo1 up

step "netrr: compare and the primary's chain on P, the secondary's chain on S"
bg ip netns exec $P $NETRR compare --mode extended --primary-in "unix:$D/pri.sock,server=on" --secondary-in tcp:10.10.0.1:9002,server=on \
  --outdev "unix:$D/out.sock,server=on" --qmp "unix:$D/pri-qmp-netrr.sock" --report "$D/divergences.jsonl" --control "unix:$D/cmp.ctl" >"$D/compare.log" 2>&1
bg ip netns exec $S $NETRR chain --guest "unix:$D/s-guest.sock,server=on" --upstream tap:taps \
  -f redirector,id=f1,queue=tx,indev=tcp:10.10.0.2:9001,,server=on -f redirector,id=f2,queue=rx,outdev=tcp:10.10.0.1:9002 \
  -f rewriter,id=rw,ts-offset=on --failover-link colo1 --control "unix:$D/s.ctl" >"$D/s-chain.log" 2>&1
bg ip netns exec $P $NETRR chain --guest "unix:$D/p-guest.sock,server=on" --upstream tap:tapp \
  -f "redirector,id=r0,queue=rx,indev=unix:$D/out.sock" -f "redirector,id=r1,queue=rx,outdev=unix:$D/pri.sock" \
  -f mirror,id=m0,queue=tx,outdev=tcp:10.10.0.2:9001 --control "unix:$D/p.ctl" >"$D/p-chain.log" 2>&1
for s in cmp.ctl s.ctl p.ctl s-guest.sock p-guest.sock; do
  for _ in $(seq 100); do [ -S "$D/$s" ] && break; sleep 0.1; done
  [ -S "$D/$s" ] || fail "netrr did not open $s: $(cat "$D"/*.log)"
done

step "QEMU: secondary waiting for the migration, primary booting (-accel $accel)"
guest() { # guest NAME NETDEV_SOCKET EXTRA...
  local name=$1 sock=$2; shift 2
  qemu-system-x86_64 -name "$name,debug-threads=on" -accel "$accel" -M pc -m 256M -nographic -nodefaults -no-reboot \
    -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -append "console=ttyS0 quiet panic=-1 netrr.task=colo-serve ipv6.disable=1 netrr.client-mac=$CLIENT_MAC netrr.role=primary" \
    -netdev "stream,id=hn0,server=off,addr.type=unix,addr.path=$sock" -device virtio-net-pci,netdev=hn0,romfile= \
    -serial "file:$D/$name.serial" "$@" >"$D/$name.log" 2>&1 &
  echo $! >"$D/$name.pid"; disown $!
  pids+=($!)
}
guest secondary "$D/s-guest.sock" -qmp "unix:$D/sec-qmp.sock,server=on,wait=off" -incoming tcp:127.0.0.1:9998
guest primary "$D/p-guest.sock" -qmp "unix:$D/pri-qmp.sock,server=on,wait=off" -qmp "unix:$D/pri-qmp-netrr.sock,server=on,wait=off"
for _ in $(seq 600); do grep -q COLO-SERVING "$D/primary.serial" 2>/dev/null && break; sleep 0.1; done
grep -q COLO-SERVING "$D/primary.serial" || fail "the primary guest did not come up"

step "COLO: x-colo on both, x-checkpoint-delay=$delay, migrate"
qmp "$D/sec-qmp.sock" migrate-set-capabilities '{"capabilities":[{"capability":"x-colo","state":true}]}' >/dev/null || fail "secondary: migrate-set-capabilities"
qmp "$D/pri-qmp.sock" migrate-set-capabilities '{"capabilities":[{"capability":"x-colo","state":true}]}' >/dev/null || fail "primary: migrate-set-capabilities"
qmp "$D/pri-qmp.sock" migrate-set-parameters "{\"x-checkpoint-delay\":$delay}" >/dev/null || fail "primary: migrate-set-parameters"
qmp "$D/pri-qmp.sock" migrate '{"uri":"tcp:127.0.0.1:9998"}' >/dev/null || fail "primary: migrate"
state=
for _ in $(seq 240); do
  state=$(qmp "$D/pri-qmp.sock" query-migrate | sed -n 's/^  "status": "\(.*\)",*$/\1/p') || fail "the primary's QMP stopped answering during the migration"
  [ "$state" = colo ] && break
  sleep 0.5
done
[ "$state" = colo ] || fail "migration status $state, not colo"
echo "primary: migration status colo; secondary: $(qmp "$D/sec-qmp.sock" query-colo-status | tr -d '\n ')"

# The secondary's filters hear of each checkpoint from QEMU's COLO code; netrr's chain hears it from the secondary's RESUME.
bg node --input-type=module -e "
import { ControlClient } from '$PWD/dist/src/control/control-client.js';
const q = await ControlClient.connect('unix:$D/sec-qmp.sock');
const chain = await ControlClient.connect('unix:$D/s.ctl');
q.onEvent = (e) => { if (e.event === 'RESUME') void chain.execute('colo-event', { event: 'checkpoint' }).then(() => console.log('checkpoint relayed')); };
" >"$D/relay.log" 2>&1

step "checkpoints: wait for two with the pair running"
for _ in $(seq 120); do
  [ "$(grep -c 'checkpoint relayed' "$D/relay.log" || true)" -ge 2 ] && break
  qmp "$D/pri-qmp.sock" query-status >/dev/null || fail "the primary's QMP stopped answering in COLO (after $(grep -c 'checkpoint relayed' "$D/relay.log" || true) checkpoints)"
  sleep 0.5
done
[ "$(grep -c 'checkpoint relayed' "$D/relay.log" || true)" -ge 2 ] || fail "no two checkpoints in 60 s"

step "download of $bytes bytes from the pair, then failover mid-download"
expected=$(node -e "const n=$bytes,b=Buffer.alloc(n+4);let x=1;for(let i=0;i<n;i+=4){x^=x<<13;x>>>=0;x^=x>>>17;x^=x<<5;x>>>=0;b.writeUInt32LE(x,i)}console.log(require('crypto').createHash('md5').update(b.subarray(0,n)).digest('hex'))")
ip netns exec $C node -e "const h=require('http'),c=require('crypto');const m=c.createHash('md5');let n=0,next=262144;
h.get({host:'10.0.2.15',port:80,path:'/data/$bytes',agent:false},(r)=>{r.on('data',(b)=>{m.update(b);n+=b.length;if(n>=next){console.log('PROGRESS '+n);next+=262144}});
r.on('end',()=>console.log('DONE '+n+' '+m.digest('hex')))}).on('error',(e)=>{console.log('ERROR '+e.message);process.exit(1)})" >"$D/client.log" 2>&1 &
client=$!
pids+=($client)
for _ in $(seq 1200); do
  n=$(sed -n 's/^PROGRESS //p' "$D/client.log" | tail -1)
  [ "${n:-0}" -ge $((bytes / 4)) ] && break
  grep -q '^DONE\|^ERROR' "$D/client.log" && break
  sleep 0.1
done
grep -q '^ERROR' "$D/client.log" && fail "client: $(cat "$D/client.log")"
echo "client at ${n:-0} bytes: failover"
qmp "$D/sec-qmp.sock" x-colo-lost-heartbeat >/dev/null || fail "secondary: x-colo-lost-heartbeat"
kill -9 "$(cat "$D/primary.pid")"
ip -n $P link set colo0 down
ip -n $P link set cp1 down
ip -n $S link set cs1 up
wait $client || true
cat "$D/client.log" | tail -2
read -r _ got_n got_md5 < <(grep '^DONE' "$D/client.log") || fail "the download did not complete after failover"
[ "$got_n" = "$bytes" ] && [ "$got_md5" = "$expected" ] || fail "got $got_n bytes, md5 $got_md5; expected $bytes, $expected"
echo "secondary chain after failover: $($NETRR control "unix:$D/s.ctl" query-filters | tr -d '\n ' | cut -c1-400)"
step "PASSED: COLO with netrr's proxy, checkpoints and failover"
