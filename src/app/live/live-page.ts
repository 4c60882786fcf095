// The live page: one self-contained HTML document (no external assets, no
// CDN), fed by /events (server-sent snapshots, live-server.ts). It shows
// each instance's state (a compare's busiest connections with their queue
// depths, a recorder's log, a replay's progress), a throughput chart, the
// divergences (click one for the primary's and the secondary's bytes side by
// side, the differing bytes highlighted) and the buffer's epochs on a timeline.

export const LIVE_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netrr live</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .8em} h2{font-size:1.05em;margin:1.2em 0 .4em}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.7em 1em;min-width:16em}
.card h3{margin:0 0 .4em;font-size:1em} .card table td{padding:0 .8em 0 0} .card td.v{font-variant-numeric:tabular-nums;text-align:right}
canvas{background:#fff;border:1px solid #ddd;border-radius:6px}
ul#divergences{list-style:none;padding:0;margin:0} ul#divergences li{cursor:pointer;padding:.3em .5em;border:1px solid #ddd;background:#fff;margin-bottom:.3em;border-radius:4px}
ul#divergences li:hover{background:#eef}
#detail{font-family:ui-monospace,monospace;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;display:none}
#detail .row span{display:inline-block;width:1.7em;text-align:center} #detail .diff{background:#f66;color:#fff;font-weight:bold;border-radius:3px}
#epochs{display:flex;align-items:flex-end;gap:2px;height:60px;background:#fff;border:1px solid #ddd;border-radius:6px;padding:4px}
#epochs div{background:#48a;width:6px}
.muted{color:#777}
table.conns{margin-top:.5em;border-collapse:collapse;font-size:.9em} table.conns th{text-align:left;font-weight:normal;color:#777;padding-right:.8em} table.conns td{padding-right:.8em}
</style></head>
<body>
<h1>netrr live <span class="muted" id="clock"></span></h1>
<div class="cards" id="cards"></div>
<h2>Frames to the world per second</h2>
<canvas id="chart" width="720" height="140"></canvas>
<div>world: <b id="world-frames">0</b> frames, <b id="world-bytes">0</b> bytes</div>
<h2>Divergences</h2>
<ul id="divergences"></ul>
<div id="detail"></div>
<h2>Buffer epochs (frames released per commit)</h2>
<div id="epochs"></div>
<script>
const $ = (id) => document.getElementById(id);
const series = [];
let last = null, shown = -1, divs = [];
function sum(o){return Object.values(o||{}).reduce((a,b)=>a+(typeof b==='number'?b:0),0)}
function fmt(v){return typeof v==='number'&&!Number.isInteger(v)?v.toFixed(1):v}
function rows(pairs){return '<table>'+pairs.map(([k,v])=>'<tr><td>'+k+'</td><td class="v">'+fmt(v)+'</td></tr>').join('')+'</table>'}
function card(i){
  const s=i.status||{};
  if(i.kind==='compare'){const c=s.counters||{};return rows([['primary in',(c.primary||{}).in],['secondary in',(c.secondary||{}).in],['released',s.released],['checkpoint requests',c.checkpointRequests],['queued (primary / secondary)',(s.queued||{}).primary+' / '+(s.queued||{}).secondary],['connections',(s.connections||{}).current]])+conns(s.busiest)}
  if(i.kind==='replay'){const p=s.progress||{};return rows([['state',s.state],['world frames injected',p.injected],['guest frames matched',p.guestFramesMatched],['still expected',p.outstanding],['divergences',p.divergences]])}
  const r=(s.filters||[]).find(f=>f.kind==='record');
  if(r){const l=r.log||{};return rows([['records logged',l.records],['log bytes',l.bytes],['segments',l.segments],['held for the log',r.held]])}
  const b=(s.filters||[]).find(f=>f.kind==='buffer');
  if(b){const h=b.holdTime||{};return rows([['held now',b.backlogFrames],['released',b.released],['epochs committed',b.epochsCommitted],['open epoch',b.openEpoch],['hold p50 / p99 (ms, ≤)',fmt(h.p50Ms)+' / '+fmt(h.p99Ms)]])}
  return rows(Object.entries(s.counters||{}).filter(([,v])=>typeof v==='number'));
}
function conns(list){
  if(!list||list.length===0)return '<div class="muted">no connection holds packets</div>';
  return '<table class="conns"><tr><th>connection</th><th>primary</th><th>secondary</th><th>oldest</th></tr>'+list.map(c=>'<tr class="conn"><td>'+c.flow+'</td><td class="v">'+c.primary+'</td><td class="v">'+c.secondary+'</td><td class="v">'+c.oldestMs+' ms</td></tr>').join('')+'</table>';
}
function hexRow(label,hex,other){
  let out='<div class="row">'+label.padEnd(10,' ').replace(/ /g,'&nbsp;');
  for(let i=0;i<hex.length;i+=2){const b=hex.slice(i,i+2),o=other.slice(i,i+2);out+='<span class="'+(b!==o?'diff':'')+'">'+b+'</span>'}
  return out+'</div>';
}
function showDivergence(k){
  const d=divs[k]; if(!d)return; shown=k;
  const p=(d.primary||{}).context||'', s=(d.secondary||{}).context||'';
  $('detail').style.display='block';
  $('detail').innerHTML='<div>'+d.cause+' on '+d.flow+(d.firstDiffOffset!==undefined?', first differing byte at offset '+d.firstDiffOffset:'')+'</div>'+hexRow('primary',p,s)+hexRow('secondary',s,p);
}
function draw(){
  const c=$('chart'),g=c.getContext('2d');g.clearRect(0,0,c.width,c.height);
  const max=Math.max(1,...series);g.strokeStyle='#48a';g.lineWidth=2;g.beginPath();
  series.forEach((v,i)=>{const x=i*(c.width/119),y=c.height-4-(v/max)*(c.height-12);i?g.lineTo(x,y):g.moveTo(x,y)});g.stroke();
  g.fillStyle='#555';g.fillText(Math.round(max)+'/s',4,12);
}
function update(snap){
  $('clock').textContent=new Date(snap.t).toLocaleTimeString();
  $('cards').innerHTML=snap.instances.map(i=>'<div class="card" data-instance="'+i.name+'"><h3>'+i.name+' <span class="muted">'+i.kind+'</span></h3>'+card(i)+'</div>').join('');
  const w=snap.world||{frames:0,bytes:0};
  $('world-frames').textContent=w.frames;$('world-bytes').textContent=w.bytes;
  if(last){const dt=(snap.t-last.t)/1000;if(dt>0){series.push(Math.max(0,(w.frames-(last.world||{frames:0}).frames)/dt));if(series.length>120)series.shift()}}
  last=snap;draw();
  divs=snap.divergences||[];
  $('divergences').innerHTML=divs.map((d,k)=>'<li class="divergence" data-k="'+k+'">'+d.time+' — '+d.cause+' on '+d.flow+(d.firstDiffOffset!==undefined?' (byte '+d.firstDiffOffset+')':'')+'</li>').join('');
  for(const li of document.querySelectorAll('li.divergence'))li.onclick=()=>showDivergence(Number(li.dataset.k));
  if(shown>=0)showDivergence(shown);
  const ep=snap.epochs||[],m=Math.max(1,...ep.map(e=>e.frames));
  $('epochs').innerHTML=ep.map(e=>'<div title="epoch '+e.epoch+': '+e.frames+' frames" style="height:'+Math.max(2,Math.round(e.frames/m*56))+'px"></div>').join('');
}
new EventSource('/events').onmessage=(e)=>update(JSON.parse(e.data));
</script>
</body></html>
`;
