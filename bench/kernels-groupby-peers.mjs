// The peers of bench/kernels-groupby.sh: one db-benchmark question end to end from the CSV file (parse,
// aggregate, write the result as CSV), timed inside the process (module loading excluded).
// usage: node bench/kernels-groupby-peers.mjs duckdb|polars QUESTION DATA_DIR OUT_FILE
//   QUESTION: q1..q5 (group-by on DATA_DIR/G1.csv), j1, j2 (joins of DATA_DIR/x.csv with small/medium)
// Prints "seconds rows" on stdout.
import { performance } from 'node:perf_hooks';

const [engine, qid, dir, out] = process.argv.slice(2);
const SQL = {
  q1: `SELECT id1, sum(v1) AS v1 FROM G1 GROUP BY id1`,
  q2: `SELECT id1, id2, sum(v1) AS v1 FROM G1 GROUP BY id1, id2`,
  q3: `SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM G1 GROUP BY id3`,
  q4: `SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM G1 GROUP BY id4`,
  q5: `SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM G1 GROUP BY id6`,
  j1: `SELECT x.*, small.id4 AS small_id4, v2 FROM x JOIN small USING (id1)`,
  j2: `SELECT x.*, medium.id1 AS medium_id1, medium.id4 AS medium_id4, medium.id5 AS medium_id5, v2 FROM x JOIN medium USING (id2)`,
};
if (!SQL[qid] || !dir || !out) {
  console.error('usage: node kernels-groupby-peers.mjs duckdb|polars q1..q5|j1|j2 DATA_DIR OUT_FILE');
  process.exit(2);
}
const isJoin = qid.startsWith('j');

if (engine === 'duckdb') {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await db.connect();
  const t0 = performance.now();
  const views = isJoin ? ['x', qid === 'j1' ? 'small' : 'medium'] : ['G1'];
  for (const v of views) await c.run(`CREATE VIEW ${v} AS SELECT * FROM read_csv('${dir}/${v}.csv')`);
  await c.run(`COPY (${SQL[qid]}) TO '${out}' (HEADER)`);
  const t = (performance.now() - t0) / 1000;
  const r = await c.runAndReadAll(`SELECT count(*) FROM read_csv('${out}')`);
  console.log(t.toFixed(3), String(r.getRows()[0][0]));
} else if (engine === 'polars') {
  const pl = (await import('nodejs-polars')).default;
  const t0 = performance.now();
  let res;
  if (!isJoin) {
    const df = pl.readCSV(`${dir}/G1.csv`);
    const g = {
      q1: () => df.groupBy('id1').agg(pl.col('v1').sum()),
      q2: () => df.groupBy(['id1', 'id2']).agg(pl.col('v1').sum()),
      q3: () => df.groupBy('id3').agg(pl.col('v1').sum(), pl.col('v3').mean()),
      q4: () => df.groupBy('id4').agg(pl.col('v1').mean(), pl.col('v2').mean(), pl.col('v3').mean()),
      q5: () => df.groupBy('id6').agg(pl.col('v1').sum(), pl.col('v2').sum(), pl.col('v3').sum()),
    };
    res = g[qid]();
  } else {
    const x = pl.readCSV(`${dir}/x.csv`);
    const y = pl.readCSV(`${dir}/${qid === 'j1' ? 'small' : 'medium'}.csv`);
    res = x.join(y, { on: qid === 'j1' ? 'id1' : 'id2', how: 'inner' });
  }
  res.writeCSV(out);
  const t = (performance.now() - t0) / 1000;
  console.log(t.toFixed(3), String(res.height));
} else {
  console.error('engine: duckdb or polars');
  process.exit(2);
}
