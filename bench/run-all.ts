// Runs every benchmark in sequence (npm run bench). Each prints its own table.
await import('./framing.ts');
console.log();
await import('./header-decode.ts');
console.log();
await import('./pcapng.ts');
