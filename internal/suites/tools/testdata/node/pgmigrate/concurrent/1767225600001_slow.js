// Holds node-pg-migrate's advisory lock until the test opens the gate (see together_test.go).
exports.up = (pgm) => {
  pgm.sql('DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate WHERE open) LOOP PERFORM pg_sleep(0.05); END LOOP; END $$');
};
exports.down = () => {};
