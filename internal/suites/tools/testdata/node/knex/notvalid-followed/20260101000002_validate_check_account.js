// What the fix tells a knex user: VALIDATE CONSTRAINT in a migration file
// of its own with exports.config = { transaction: false }, both pending in
// one run of knex migrate:latest.
exports.config = { transaction: false };
exports.up = (knex) => knex.raw('ALTER TABLE big VALIDATE CONSTRAINT big_account_nonnegative');
exports.down = async () => {};
