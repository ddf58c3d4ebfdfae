// Holds knex's lock until the test opens the gate (see together_test.go).
exports.up = (knex) => knex.raw('DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate WHERE open) LOOP PERFORM pg_sleep(0.05); END LOOP; END $$');
exports.down = () => Promise.resolve();
