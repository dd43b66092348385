// node-postgres through spillway's proxy: named prepared statements from many clients over a
// small transaction pool, and a transaction that must stay on one server connection.
// Connection settings come from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE.
const { Client } = require('pg');

async function worker(id) {
  const c = new Client();
  await c.connect();
  for (let i = 0; i < 20; i++) {
    // `name` makes node-postgres use a named protocol-level prepared statement.
    const r = await c.query({ name: 'add', text: 'SELECT $1::int + $2::int AS v', values: [id, i] });
    if (r.rows[0].v !== id + i) throw new Error(`client ${id}: ${r.rows[0].v} != ${id + i}`);
    const t = await c.query({ name: 'echo', text: 'SELECT $1::text AS t', values: [`c${id}-${i}`] });
    if (t.rows[0].t !== `c${id}-${i}`) throw new Error(`client ${id}: echo mismatch`);
  }
  await c.query('BEGIN');
  const a = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  const b = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  await c.query('COMMIT');
  if (a !== b) throw new Error(`client ${id}: transaction moved from backend ${a} to ${b}`);
  await c.end();
}

Promise.all(Array.from({ length: 30 }, (_, i) => worker(i)))
  .then(() => { console.log('ok 30 clients'); })
  .catch((e) => { console.error(e); process.exit(1); });
