// node-postgres through pgguard: one scenario per run (argv[2]), connection
// from the PG* environment variables. Prints each step, checks every result,
// and ends with "PASS" (exit 0) or "FAIL: ..." (exit 1). See
// internal/suites/drivers/node_test.go.
'use strict';
const assert = require('assert');
const { Client } = require('pg');

const scenario = process.argv[2];
let client;
let notices = [];
let step = 'connect';

function log(s) {
  step = s;
  console.log(s);
}

// A counter makes every checked value unique, so that a result left over
// from an earlier query can never pass for the expected one.
let seq = 0;

async function q(config) {
  const r = await client.query(config);
  return r;
}

// expectRefused runs config and wants pgguard's refusal by rule.
async function expectRefused(config, rule) {
  let err;
  try {
    await client.query(config);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `no error: the statement was not refused by ${rule}`);
  assert.strictEqual(err.code, '42501', `SQLSTATE of ${err.message}`);
  assert.ok(err.message.startsWith(`pgguard: ${rule}:`), `message ${JSON.stringify(err.message)}`);
}

// expectNotice wants a notice from rule since the last call, and clears them.
function expectNotice(rule) {
  const got = notices.map((n) => n.message);
  notices = [];
  assert.ok(got.some((m) => m.startsWith(`pgguard: ${rule}:`)), `notices ${JSON.stringify(got)}, want one from ${rule}`);
}

// checks runs the queries that reveal a desynchronised session: simple,
// unnamed parameterised, a named prepared statement run several times and
// multi-row results, each with a value not seen before.
async function checks(when) {
  log(`${when}: SELECT 1`);
  let r = await q('SELECT 1 AS one');
  assert.deepStrictEqual(r.rows, [{ one: 1 }]);

  const tok = `tok-${when}-${++seq}`;
  log(`${when}: SELECT $1 (unnamed, parameterised)`);
  r = await q({ text: 'SELECT $1::text AS v', values: [tok] });
  assert.deepStrictEqual(r.rows, [{ v: tok }]);

  for (let i = 0; i < 7; i++) {
    const n = ++seq;
    log(`${when}: named statement s1 run ${i + 1}`);
    r = await q({ name: 's1', text: 'SELECT $1::int * 2 AS v', values: [n] });
    assert.deepStrictEqual(r.rows, [{ v: 2 * n }]);
  }

  const rows = 3 + (++seq % 5);
  log(`${when}: multi-row SELECT (extended, ${rows} rows)`);
  r = await q({ text: 'SELECT g FROM generate_series(1, $1::int) g', values: [rows] });
  assert.deepStrictEqual(r.rows.map((x) => x.g), Array.from({ length: rows }, (_, i) => i + 1));

  log(`${when}: multi-row SELECT (simple)`);
  r = await q("SELECT g, 'r' || g AS s FROM generate_series(1, 4) g");
  assert.deepStrictEqual(r.rows.map((x) => x.s), ['r1', 'r2', 'r3', 'r4']);

  log(`${when}: transaction status`);
  r = await q('SELECT now() = statement_timestamp() AS idle');
  assert.deepStrictEqual(r.rows, [{ idle: true }], 'left inside a transaction block');
}

const scenarios = {
  async allowed() {
    log('CREATE TABLE (simple)');
    await q('CREATE TABLE IF NOT EXISTS t_allowed (id bigint PRIMARY KEY, v text)');
    await checks('after CREATE TABLE');
    log('CREATE INDEX on small (named statement)');
    await q({ name: 'ci_small', text: 'CREATE INDEX small_v_named ON small (v)' });
    await checks('after CREATE INDEX on small (named)');
    log('CREATE INDEX on small (unnamed, extended)');
    await q({ text: 'CREATE INDEX small_v_ext ON small (v, id)', queryMode: 'extended' });
    await checks('after CREATE INDEX on small (extended)');
    log('CREATE TABLE with an int primary key (warned)');
    notices = [];
    await q('CREATE TABLE t_warned (id int PRIMARY KEY)');
    expectNotice('prefer-bigint');
    await checks('after a warned CREATE TABLE');
  },

  async rewritten() {
    log('CREATE INDEX on big (simple)');
    notices = [];
    let r = await q('CREATE INDEX big_rw_simple ON big (account)');
    assert.strictEqual(r.command, 'CREATE');
    expectNotice('create-index');
    await checks('after rewritten CREATE INDEX (simple)');
    log('CREATE INDEX on big (named statement)');
    r = await q({ name: 'ci_big', text: 'CREATE INDEX big_rw_named ON big (note)' });
    assert.strictEqual(r.command, 'CREATE');
    expectNotice('create-index');
    await checks('after rewritten CREATE INDEX (named)');
    log('CREATE INDEX on big (unnamed, extended)');
    r = await q({ text: 'CREATE INDEX big_rw_ext ON big (account, id)', queryMode: 'extended' });
    assert.strictEqual(r.command, 'CREATE');
    expectNotice('create-index');
    await checks('after rewritten CREATE INDEX (extended)');
    log('the indexes are valid');
    r = await q({
      text: "SELECT count(*)::int AS n FROM pg_index WHERE indisvalid AND indexrelid::regclass::text = ANY($1)",
      values: [['big_rw_simple', 'big_rw_named', 'big_rw_ext']],
    });
    assert.deepStrictEqual(r.rows, [{ n: 3 }]);
  },

  async refused() {
    log('ALTER TABLE big ALTER COLUMN account TYPE bigint (simple)');
    await expectRefused('ALTER TABLE big ALTER COLUMN account TYPE bigint', 'alter-column-type');
    await checks('after a refused ALTER (simple)');
    log('ALTER TABLE big ALTER COLUMN account TYPE bigint (named statement)');
    await expectRefused({ name: 'alter_big', text: 'ALTER TABLE big ALTER COLUMN account TYPE bigint' }, 'alter-column-type');
    await checks('after a refused ALTER (named)');
    log('BEGIN; CREATE INDEX on big (simple)');
    await q('BEGIN');
    await expectRefused('CREATE INDEX big_in_tx ON big (note)', 'create-index');
    log('ROLLBACK');
    let r = await q('ROLLBACK');
    assert.strictEqual(r.command, 'ROLLBACK');
    await checks('after a refused CREATE INDEX in a transaction (simple)');
    log('BEGIN; CREATE INDEX on big (unnamed, extended)');
    await q('BEGIN');
    await expectRefused({ text: 'CREATE INDEX big_in_tx_ext ON big (note)', queryMode: 'extended' }, 'create-index');
    log('COMMIT of the aborted transaction');
    r = await q('COMMIT');
    assert.strictEqual(r.command, 'ROLLBACK');
    await checks('after a refused CREATE INDEX in a transaction (extended)');
  },

  async multi() {
    log('CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1');
    let r = await q('CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1 AS one');
    assert.ok(Array.isArray(r) && r.length === 2, `want two results, got ${JSON.stringify(r && r.rows)}`);
    assert.strictEqual(r[0].command, 'CREATE');
    assert.deepStrictEqual(r[1].rows, [{ one: 1 }]);
    await checks('after a multi-statement query');
    log('INSERT ...; SELECT ... (two statements, rows)');
    r = await q("INSERT INTO t_multi VALUES (41), (42); SELECT a FROM t_multi ORDER BY a");
    assert.deepStrictEqual(r[1].rows, [{ a: 41 }, { a: 42 }]);
    await checks('after a multi-statement query with rows');
    log('multi-statement query with a refused statement');
    await expectRefused('INSERT INTO t_multi VALUES (43); ALTER TABLE big ALTER COLUMN account TYPE bigint', 'alter-column-type');
    r = await q('SELECT count(*)::int AS n FROM t_multi WHERE a = 43');
    assert.deepStrictEqual(r.rows, [{ n: 0 }], 'a statement of the refused query ran');
    await checks('after a refused multi-statement query');
  },
};

async function main() {
  if (!scenarios[scenario]) {
    throw new Error(`unknown scenario ${scenario}`);
  }
  // query_timeout turns a hang (a ReadyForQuery that never comes) into an
  // error naming the step, before the test's process timeout.
  client = new Client({ query_timeout: 20000, connectionTimeoutMillis: 10000 });
  client.on('notice', (n) => notices.push(n));
  client.on('error', (e) => console.log(`client error: ${e.message}`));
  await client.connect();
  await scenarios[scenario]();
  await client.end();
  console.log('PASS');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`FAIL: ${step}: ${e.message}`);
    process.exit(1);
  },
);
