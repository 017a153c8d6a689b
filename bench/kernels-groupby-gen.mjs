// Generate the db-benchmark group-by table (and the join tables) as CSV with DuckDB, deterministically
// (setseed). The distributions follow h2oai/db-benchmark's groupby-datagen.R and join-datagen.R:
//   groupby G1_N_K: id1, id2 = "id%03d" of K groups; id3 = "id%010d" of N/K groups; id4, id5 = ints
//   1..K; id6 = ints 1..N/K; v1 = 1..5; v2 = 1..15; v3 = runif(0, 100) rounded to 6 decimals.
//   join x: id1 (1..N/1e6 * 1.1 ish), id2, id3, id4..id6 their "id%d" strings, v1 float; small (N/1e6
//   rows: id1, id4, v2) and medium (N/1e3 rows: id1, id2, id4, id5, v2): keys drawn so ~90% of x matches.
// usage: node bench/kernels-groupby-gen.mjs groupby|join N OUTDIR
import { DuckDBInstance } from '@duckdb/node-api';

const [kind, nArg, dir] = process.argv.slice(2);
const N = Number(nArg);
if (!['groupby', 'join'].includes(kind) || !(N > 0) || !dir) {
  console.error('usage: node kernels-groupby-gen.mjs groupby|join N OUTDIR');
  process.exit(2);
}
const db = await DuckDBInstance.create(':memory:', { threads: '2' });
const c = await db.connect();
await c.run('SELECT setseed(0.42)');
const K = 100;
const q = (s) => s.replaceAll('$NK', String(Math.max(1, Math.floor(N / K)))).replaceAll('$N', String(N)).replaceAll('$K', String(K));
if (kind === 'groupby') {
  // random() is called per row in order; one thread keeps the order (and so the file) deterministic
  await c.run('SET threads = 1');
  await c.run(q(`COPY (SELECT
      printf('id%03d', 1 + floor(random() * $K)::INT) AS id1,
      printf('id%03d', 1 + floor(random() * $K)::INT) AS id2,
      printf('id%010d', 1 + floor(random() * $NK)::INT) AS id3,
      1 + floor(random() * $K)::INT AS id4,
      1 + floor(random() * $K)::INT AS id5,
      1 + floor(random() * $NK)::INT AS id6,
      1 + floor(random() * 5)::INT AS v1,
      1 + floor(random() * 15)::INT AS v2,
      round(random() * 100, 6) AS v3
    FROM range($N)) TO '${dir}/G1.csv' (HEADER, DELIMITER ',')`));
} else {
  await c.run('SET threads = 1');
  const nS = Math.max(1, Math.floor(N / 1e6)) * 10, nM = Math.max(1, Math.floor(N / 1e3));
  // x's id1 takes 1..nS*1.1 so ~90% of the rows find their key in small; the same for id2 in medium
  await c.run(`COPY (SELECT
      1 + floor(random() * ${Math.ceil(nS * 1.1)})::INT AS id1,
      1 + floor(random() * ${Math.ceil(nM * 1.1)})::INT AS id2,
      1 + floor(random() * ${Math.ceil(N * 1.1)})::BIGINT AS id3,
      printf('id%d', 1 + floor(random() * ${Math.ceil(nS * 1.1)})::INT) AS id4,
      printf('id%d', 1 + floor(random() * ${Math.ceil(nM * 1.1)})::INT) AS id5,
      printf('id%d', 1 + floor(random() * ${Math.ceil(N * 1.1)})::BIGINT) AS id6,
      round(random() * 100, 6) AS v1
    FROM range(${N})) TO '${dir}/x.csv' (HEADER)`);
  await c.run(`COPY (SELECT range + 1 AS id1, printf('id%d', range + 1) AS id4, round(random() * 100, 6) AS v2
    FROM range(${nS})) TO '${dir}/small.csv' (HEADER)`);
  await c.run(`COPY (SELECT range + 1 AS id1, range + 1 AS id2, printf('id%d', range + 1) AS id4,
      printf('id%d', range + 1) AS id5, round(random() * 100, 6) AS v2
    FROM range(${nM})) TO '${dir}/medium.csv' (HEADER)`);
}
